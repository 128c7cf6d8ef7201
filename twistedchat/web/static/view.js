// The page as a view over ChatSession: conversation list, lines, members, topic; redrawn at most
// once per animation frame.

import { SERVER_BUFFER } from "./client.js";
import { runInput } from "./commands.js";
import { $, clock, element, linkified } from "./dom.js";
import { nickHue } from "./irc.js";

/** Pixels an avatar takes (drawn at most this big, whatever the image's own size). */
const AVATAR_SIZE = 20;

/** A person's name as shown: the display name (the nick on hover), its colour, a bot badge, the
 * avatar before it when one is set (an http(s) image, sent no referrer). */
function nickElement(person, withAvatar = false) {
  const parts = [];
  if (withAvatar && person.avatar) {
    parts.push(element("img", {
      class: "avatar", src: person.avatar, alt: "", width: AVATAR_SIZE, height: AVATAR_SIZE,
      referrerpolicy: "no-referrer", loading: "lazy", decoding: "async",
    }));
  }
  const name = element("span", { class: "nick", title: person.realname ? `${person.nick} (${person.realname})` : person.nick },
    person.displayName);
  if (person.colour) name.style.color = person.colour; // CSSOM: allowed by the page's CSP
  else name.style.setProperty("--hue", String(nickHue(person.nick)));
  parts.push(name);
  if (person.bot) parts.push(element("span", { class: "badge", title: "a bot" }, "bot"));
  return parts;
}

/** How a private conversation's person is: online, away (why) or offline, when MONITOR says. */
function presenceText(person) {
  if (person.presence === "offline") return "offline";
  if (person.away !== null) return person.away ? `away: ${person.away}` : "away";
  return person.presence === "online" ? "online" : "";
}

/** Draws the session into the page; redraws at most once per animation frame. */
export class View {
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
    const about = conv.kind === "query" ? presenceText(session.known(conv.name)) : "";
    $("#topic").textContent = conv.kind === "channel" ? conv.topic : about;
    $("#topic").title = conv.kind === "channel" ? conv.topic : about;
    $("#topic").dataset.presence = conv.kind === "query" ? about.split(":")[0] : "";
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
      if (conv.kind === "query") item.dataset.presence = presenceText(this.session.known(conv.name)).split(":")[0];
      if (conv.unread) item.append(element("span", { class: "unread", "aria-label": "unread" }, String(conv.unread)));
      list.append(item);
    }
  }

  drawLines(conv) {
    const box = $("#lines");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const switched = this.drawnLines !== conv;
    // Names, avatars or the "last read" line changed: draw the lines again.
    const redraw = this.drawnVersion !== this.session.peopleVersion || this.drawnMarker !== conv.shownMarker;
    if (switched || redraw || this.drawnCount > conv.lines.length ||
        (this.drawnCount && conv.lines[this.drawnCount - 1] !== this.lastDrawn)) {
      box.replaceChildren();
      this.drawnCount = 0;
      this.markerDrawn = false;
    }
    const marker = conv.shownMarker;
    conv.lines.slice(this.drawnCount).forEach((line, index) => {
      const first = this.drawnCount + index === 0;
      if (marker && !this.markerDrawn && !first && line.serverTime && line.serverTime > marker) {
        box.append(element("div", { class: "read-marker", role: "separator" }, element("span", {}, "last read")));
        this.markerDrawn = true;
      }
      box.append(this.lineElement(line));
    });
    this.drawnVersion = this.session.peopleVersion;
    this.drawnMarker = marker;
    this.drawnLines = conv;
    this.drawnCount = conv.lines.length;
    this.lastDrawn = conv.lines[conv.lines.length - 1];
    // Follow new lines only when the reader is at the bottom (not while reading back).
    if (atBottom || switched) box.scrollTop = box.scrollHeight;
  }

  lineElement(line) {
    const row = element("div", { class: `line ${line.kind}${line.history ? " history" : ""}` },
      element("time", { datetime: new Date(line.time).toISOString() }, clock(line.time)));
    const person = this.session.known(line.nick);
    if (line.kind === "message" || line.kind === "notice") {
      row.append(element("span", { class: "who" }, ...nickElement(person, true)),
        element("span", { class: "text" }, ...linkified(line.text)));
    } else if (line.kind === "action") {
      row.append(element("span", { class: "text" }, "• ", ...nickElement(person), " ", ...linkified(line.text)));
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
      const person = this.session.known(member.nick);
      list.append(element("li", {
        class: person.away !== null ? "away" : "",
        "data-nick": member.nick,
        title: person.away !== null ? presenceText(person) : "",
        ondblclick: () => runInput(this.session, `/msg ${member.nick}`),
      }, element("span", { class: "prefix" }, member.prefix.slice(0, 1)), ...nickElement(person, true)));
    }
  }
}

