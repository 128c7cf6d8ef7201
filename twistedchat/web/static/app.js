// The page: a view over ChatSession (conversation list, lines, members, topic) and the input box
// with its slash commands. Text from the network only ever goes into the page as text nodes.

import { ChatSession, SERVER_BUFFER } from "./client.js";
import { casefold, isChannel, nickHue } from "./irc.js";

const $ = (selector) => document.querySelector(selector);
const LINK = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]'"]/g;

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

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/** Text with its web links made clickable. */
function linkified(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    parts.push(text.slice(last, match.index));
    parts.push(element("a", { href: match[0], target: "_blank", rel: "noopener noreferrer" }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function nickElement(nick) {
  const node = element("span", { class: "nick" }, nick);
  node.style.setProperty("--hue", String(nickHue(nick))); // CSSOM: allowed by the page's CSP
  return node;
}

function clock(time) {
  const date = new Date(time);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

const HELP = [
  "/join #channel [key] — join (or open) a channel",
  "/part [#channel] [reason] — leave a channel",
  "/msg nick text — a private message",
  "/me action — say what you do",
  "/nick newnick — change your nick",
  "/topic [text] — show or set the channel topic",
  "/close — close this conversation",
  "/quit [reason] — leave the chat",
];

/** `[#channel] [text]` (/part, /topic): the channel named first, else the current one (null if
 * neither is a channel), and the text after it. */
function channelAndText(session, here, words, rest) {
  const chantypes = session.isupport.CHANTYPES;
  if (words[0] && isChannel(words[0], chantypes)) return [words[0], rest.slice(words[0].length).trim()];
  return [here && isChannel(here, chantypes) ? here : null, rest];
}

/** Runs what the user typed: a slash command or text for the current conversation. */
export function runInput(session, text) {
  const conv = session.conversations.get(session.current);
  if (!text.startsWith("/") || text.startsWith("//")) {
    const body = text.startsWith("//") ? text.slice(1) : text;
    if (!conv || conv.kind === "server") {
      session.info("This is the server's window: /join a channel or /msg someone first.", "error");
      return;
    }
    session.say(conv.name, body);
    return;
  }
  const space = text.indexOf(" ");
  const name = (space === -1 ? text.slice(1) : text.slice(1, space)).toLowerCase();
  const rest = space === -1 ? "" : text.slice(space + 1).trim();
  const words = rest.split(/\s+/).filter(Boolean);
  const here = conv && conv.kind !== "server" ? conv.name : null;
  const usage = (line) => session.info(`Usage: ${line}`, "error");
  switch (name) {
    case "join":
    case "j":
      if (!words[0]) return usage("/join #channel [key]");
      for (const channel of words[0].split(",")) {
        const full = isChannel(channel, session.isupport.CHANTYPES) ? channel : `#${channel}`;
        session.join(full, words[1] || null);
      }
      return;
    case "part":
    case "leave": {
      const [channel, reason] = channelAndText(session, here, words, rest);
      if (!channel) return usage("/part #channel [reason]");
      session.send("PART", channel, ...(reason ? [reason] : []));
      return;
    }
    case "msg":
    case "query": {
      if (!words[0]) return usage("/msg nick text");
      const body = rest.slice(words[0].length).trim();
      session.conversation(words[0], isChannel(words[0], session.isupport.CHANTYPES) ? "channel" : "query");
      session.select(words[0]);
      if (body) session.say(words[0], body);
      return;
    }
    case "me":
      if (!here) return usage("/me action (in a channel or a private conversation)");
      if (!rest) return usage("/me action");
      session.say(here, rest, true);
      return;
    case "nick":
      if (words.length !== 1) return usage("/nick newnick");
      session.changeNick(words[0]);
      return;
    case "topic": {
      const [channel, topic] = channelAndText(session, here, words, rest);
      if (!channel) return usage("/topic [#channel] [text]");
      session.send("TOPIC", channel, ...(topic ? [topic] : []));
      return;
    }
    case "close":
      if (here) session.close(here);
      return;
    case "quit":
      session.quit(rest || "Leaving");
      localStorage.removeItem("twistedchat.nick"); // a reload asks for a nick again
      return;
    case "help":
      for (const line of HELP) session.info(line);
      return;
    default:
      session.info(`Unknown command /${name} — /help lists them`, "error");
  }
}

/** Draws the session into the page; redraws at most once per animation frame. */
class View {
  constructor(session) {
    this.session = session;
    this.pending = null;
    this.drawnLines = null;
    this.drawnCount = 0;
    session.addEventListener("change", () => this.schedule());
  }

  schedule() {
    // A tab out of view gets no animation frames (a frame asked for before it was hidden waits
    // too), but its title should still count unread lines: then a timer draws.
    if (this.pending === "timer" || (this.pending === "frame" && !document.hidden)) return;
    const draw = () => {
      this.pending = null;
      this.draw();
    };
    if (document.hidden) {
      this.pending = "timer";
      setTimeout(draw, 0);
    } else {
      this.pending = "frame";
      requestAnimationFrame(draw);
    }
  }

  draw() {
    const session = this.session;
    const conv = session.conversations.get(session.current) || session.conversations.get(SERVER_BUFFER);
    document.body.dataset.status = session.status;
    $("#status").textContent = {
      online: `${session.nick}`, connecting: "connecting…", registering: "signing in…",
      waiting: "reconnecting…", offline: "offline",
    }[session.status] || session.status;
    this.drawList(conv);
    $("#title").textContent = conv.kind === "server" ? (session.serverName || "Server") : conv.name;
    $("#topic").textContent = conv.kind === "channel" ? conv.topic : "";
    $("#topic").title = conv.kind === "channel" ? conv.topic : "";
    this.drawLines(conv);
    this.drawMembers(conv);
    $("#input").placeholder = conv.kind === "server" ? "/join #channel" : `Message ${conv.name}`;
    const waiting = session.pacer.waiting.length;
    $("#pending").textContent = waiting ? `${waiting} waiting to go out…` : "";
    document.title = this.unreadTotal() ? `(${this.unreadTotal()}) twistedchat` : "twistedchat";
  }

  unreadTotal() {
    let total = 0;
    for (const conv of this.session.conversations.values()) total += conv.unread;
    return total;
  }

  drawList(current) {
    const list = $("#conversations");
    list.replaceChildren();
    for (const key of this.session.order) {
      const conv = this.session.conversations.get(key);
      if (!conv) continue;
      const label = conv.kind === "server" ? (this.session.serverName || "server") : conv.name;
      const item = element("li", {
        class: [conv === current ? "current" : "", conv.kind === "channel" && !conv.joined ? "parted" : "",
          conv.mentions ? "mention" : ""].join(" ").trim(),
        "data-name": conv.name,
        onclick: () => {
          this.session.select(conv.name);
          document.body.classList.remove("show-list");
        },
      }, element("span", { class: "name" }, label));
      if (conv.unread) item.append(element("span", { class: "unread", "aria-label": "unread" }, String(conv.unread)));
      list.append(item);
    }
  }

  drawLines(conv) {
    const box = $("#lines");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const switched = this.drawnLines !== conv;
    if (switched || this.drawnCount > conv.lines.length ||
        (this.drawnCount && conv.lines[this.drawnCount - 1] !== this.lastDrawn)) {
      box.replaceChildren();
      this.drawnCount = 0;
    }
    for (const line of conv.lines.slice(this.drawnCount)) box.append(this.lineElement(line));
    this.drawnLines = conv;
    this.drawnCount = conv.lines.length;
    this.lastDrawn = conv.lines[conv.lines.length - 1];
    // Follow new lines only when the reader is at the bottom (not while reading back).
    if (atBottom || switched) box.scrollTop = box.scrollHeight;
  }

  lineElement(line) {
    const row = element("div", { class: `line ${line.kind}${line.history ? " history" : ""}` },
      element("time", { datetime: new Date(line.time).toISOString() }, clock(line.time)));
    if (line.kind === "message" || line.kind === "notice") {
      row.append(nickElement(line.nick), element("span", { class: "text" }, ...linkified(line.text)));
    } else if (line.kind === "action") {
      row.append(element("span", { class: "text" }, "• ", nickElement(line.nick), " ", ...linkified(line.text)));
    } else {
      row.append(element("span", { class: "text" }, line.text));
    }
    return row;
  }

  drawMembers(conv) {
    const list = $("#members");
    list.replaceChildren();
    const show = conv.kind === "channel";
    document.body.classList.toggle("no-members", !show);
    if (!show) return;
    $("#member-count").textContent = `${conv.members.size} here`;
    for (const member of conv.sortedMembers(this.session.prefixSymbols)) {
      list.append(element("li", {
        ondblclick: () => runInput(this.session, `/msg ${member.nick}`),
      }, element("span", { class: "prefix" }, member.prefix.slice(0, 1)), nickElement(member.nick)));
    }
  }
}

/** Back to the sign-in form (the nick filled in), saying why: after a refused password. */
function signOut(why) {
  sessionStorage.removeItem("twistedchat.password");
  sessionStorage.setItem("twistedchat.signout", why);
  location.reload();
}

function start(nick, channels, password) {
  const session = new ChatSession({ url: socketUrl(), nick, channels, storage: localStorage, password });
  session.addEventListener("refused", (event) => signOut(`The server refused the password: ${event.detail}`));
  window.twistedchat = session; // for the console and the browser tests
  session.remember();
  const view = new View(session);
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
    start(saved, channels, sessionStorage.getItem("twistedchat.password") || "");
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
    start(nick, list, password);
  });
  $("#login-nick").focus();
}

main();
