// The page: sign-in form, then the chat (view.js draws it; commands.js runs what is typed).

import { ChatSession } from "./client.js";
import { runInput } from "./commands.js";
import { $ } from "./dom.js";
import { casefold } from "./irc.js";
import { setUpSettings } from "./settings.js";
import { View } from "./view.js";

/** The WebSocket beside the page (ws:// or wss:// like the page), unless ?ws=URL says otherwise. */
function socketUrl() {
  const given = new URLSearchParams(location.search).get("ws");
  if (given) return given;
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.href;
}

/** Back to the sign-in form (the nick filled in), saying why: after a refused password. */
function signOut(why) {
  sessionStorage.removeItem("twistedchat.password");
  sessionStorage.removeItem("twistedchat.login");
  sessionStorage.setItem("twistedchat.signout", why);
  location.reload();
}

function start(nick, channels, password, login) {
  const session = new ChatSession({ url: socketUrl(), nick, channels, storage: localStorage, password, login });
  session.addEventListener("refused", (event) => signOut(event.detail));
  window.twistedchat = session; // for the console and the browser tests
  session.remember();
  const view = new View(session);
  setUpSettings(session);
  document.body.classList.add("chatting");
  const input = $("#input");
  const history = [];
  let recall = 0;
  $("#send").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    const lines = text.split(/\r?\n/).filter((line) => line.trim());
    const conv = session.conversations.get(session.current);
    if (lines.length > 1 && conv && conv.kind !== "server" && !lines.some((l) => l.startsWith("/"))) {
      // A paste: one message per line, paced.
      if (session.sayLines(conv.name, lines)) input.value = "";
    } else {
      input.value = "";
      for (const line of lines) runInput(session, line);
    }
    if (text.trim()) history.push(text);
    recall = history.length;
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("#send").requestSubmit();
    } else if (event.key === "ArrowUp" && !input.value.includes("\n") && recall > 0) {
      recall -= 1;
      input.value = history[recall];
      event.preventDefault();
    } else if (event.key === "ArrowDown" && recall < history.length) {
      recall += 1;
      input.value = history[recall] || "";
      event.preventDefault();
    } else if (event.key === "Tab") {
      event.preventDefault();
      completeNick(session, input);
    }
  });
  $("#toggle-list").addEventListener("click", () => {
    document.body.classList.remove("show-members");
    document.body.classList.toggle("show-list");
  });
  $("#toggle-members").addEventListener("click", () => {
    document.body.classList.remove("show-list");
    document.body.classList.toggle("show-members");
  });
  for (const area of [$("#lines"), input]) {
    area.addEventListener("focus", () => document.body.classList.remove("show-list", "show-members"));
    area.addEventListener("click", () => document.body.classList.remove("show-list", "show-members"));
  }
  $("#join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("#join-name").value.trim();
    if (name) runInput(session, `/join ${name}`);
    $("#join-name").value = "";
  });
  document.addEventListener("visibilitychange", () => {
    session.visible = document.visibilityState === "visible";
    if (session.visible) session.select(session.conversations.get(session.current).name);
  });
  session.connect();
  view.draw();
  input.focus();
}

/** Tab: complete the nick before the caret from the current channel's members. */
function completeNick(session, input) {
  const conv = session.conversations.get(session.current);
  if (!conv) return;
  const before = input.value.slice(0, input.selectionStart);
  const word = /\S*$/.exec(before)[0];
  if (!word) return;
  const found = conv.sortedMembers(session.prefixSymbols)
    .find((m) => casefold(m.nick).startsWith(casefold(word)));
  if (!found) return;
  const suffix = before.length === word.length ? ": " : " ";
  input.value = before.slice(0, before.length - word.length) + found.nick + suffix + input.value.slice(before.length);
}

/** The account login this tab signed in with (kept for this tab only, as the password is). */
function savedLogin() {
  try {
    const login = JSON.parse(sessionStorage.getItem("twistedchat.login") || "null");
    return login && typeof login.account === "string" && typeof login.password === "string" ? login : null;
  } catch {
    return null;
  }
}

function main() {
  const saved = localStorage.getItem("twistedchat.nick");
  let channels = ["#lobby"];
  try {
    const stored = JSON.parse(localStorage.getItem("twistedchat.channels") || "null");
    if (Array.isArray(stored)) channels = stored.filter((c) => typeof c === "string");
  } catch {
    // a damaged setting: keep the default
  }
  const form = $("#login");
  $("#login-channel").value = channels[0] || "#lobby";
  const why = sessionStorage.getItem("twistedchat.signout");
  sessionStorage.removeItem("twistedchat.signout");
  if (saved && !why) {
    start(saved, channels, sessionStorage.getItem("twistedchat.password") || "", savedLogin());
    return;
  }
  $("#login-error").textContent = why || "";
  if (saved) $("#login-nick").value = saved;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = $("#login-nick").value.trim();
    if (!/^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]{0,29}$/.test(nick)) {
      $("#login-error").textContent = "A nick is 1-30 letters, digits or [ ] \\ ` _ ^ { | } -, not starting with a digit or -.";
      return;
    }
    const channel = $("#login-channel").value.trim();
    const list = channel ? channel.split(/[ ,]+/).map((c) => (c.startsWith("#") ? c : `#${c}`)) : [];
    // The password lives for this tab only (a reload keeps it, a new tab asks again).
    const password = $("#login-password").value;
    if (password) sessionStorage.setItem("twistedchat.password", password);
    const login = { account: $("#login-account").value.trim(), password: $("#login-account-password").value };
    if (login.account) sessionStorage.setItem("twistedchat.login", JSON.stringify(login));
    start(nick, list, password, login.account ? login : null);
  });
  $("#login-nick").focus();
}

main();
