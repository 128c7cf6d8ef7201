// The chat session over the IRCv3 WebSocket transport: registration, capabilities, the model of
// conversations (channels, private talks, the server's own), history via CHATHISTORY, reconnects.
// No DOM here: the view (app.js) listens for "change" events and reads the model.

import { buildLine, casefold, isChannel, nickOf, parseLine } from "./irc.js";
import { peopleMixin } from "./people.js";
import { saslMixin } from "./sasl.js";

/** Capabilities the page uses when the server offers them. */
const WANTED_CAPS = [
  "server-time", "message-tags", "echo-message", "multi-prefix", "userhost-in-names",
  "away-notify", "batch", "draft/chathistory", "draft/read-marker", "draft/metadata-2",
  "extended-monitor", "setname",
];
/** Lines kept per conversation; older ones are dropped. */
const SCROLLBACK = 1000;
/** Messages asked for on joining, capped by the server's CHATHISTORY limit. */
const HISTORY_LINES = 100;
/** Reconnect delays grow from the first to the last (milliseconds), with some jitter. */
const BACKOFF_FIRST = 1000;
const BACKOFF_MOST = 30000;
/** What the user says goes out at most this many lines at once, then this many a second: well
 * inside the daemon's flood limit (20, then 5 a second), as the bots pace theirs. */
const PACE_BURST = 10;
const PACE_RATE = 2;
/** Lines that may wait their turn; a paste beyond that is refused, not sent in part. */
const PACE_QUEUE = 200;
export const SERVER_BUFFER = "*server*";

/** Whether ``text`` names ``nick`` as a word of its own (not "al" inside "also"). */
export function mentions(text, nick) {
  if (!text || !nick) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w])${escaped}($|[^\\w])`, "i").test(text);
}

/** Lines out no faster than a token bucket allows; the rest wait in order. */
export class Pacer {
  constructor(send, burst = PACE_BURST, rate = PACE_RATE, now = () => Date.now()) {
    this.send = send;
    this.burst = burst;
    this.rate = rate;
    this.now = now;
    this.tokens = burst;
    this.stamp = now();
    this.waiting = [];
    this.timer = null;
  }

  refill() {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.stamp) / 1000) * this.rate);
    this.stamp = now;
  }

  /** Queue lines (all or none: false when they would not fit the queue). */
  push(lines) {
    if (this.waiting.length + lines.length > PACE_QUEUE) return false;
    this.waiting.push(...lines);
    this.drain();
    return true;
  }

  drain() {
    clearTimeout(this.timer);
    this.timer = null;
    this.refill();
    while (this.waiting.length && this.tokens >= 1) {
      this.tokens -= 1;
      this.send(this.waiting.shift());
    }
    if (this.waiting.length) {
      this.timer = setTimeout(() => this.drain(), Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    }
  }

  /** Forget what waits (the connection is gone). */
  clear() {
    clearTimeout(this.timer);
    this.timer = null;
    this.waiting = [];
  }
}

/** One conversation: a channel, a private talk or the server's messages. */
export class Conversation {
  constructor(name, kind) {
    this.name = name;
    this.kind = kind; // "channel" | "query" | "server"
    this.lines = [];
    this.members = new Map(); // casefolded nick -> {nick, prefix}
    this.topic = "";
    this.unread = 0;
    this.mentions = 0;
    this.joined = kind !== "channel";
    this.seenIds = new Set();
    this.readMarker = null; // the server's read marker (draft/read-marker), a server time
    this.shownMarker = null; // where the "last read" line is drawn
  }

  /** Add a line in time order (history may arrive older than what is shown). */
  add(line) {
    if (line.id) {
      if (this.seenIds.has(line.id)) return false;
      this.seenIds.add(line.id);
    }
    const lines = this.lines;
    let at = lines.length;
    while (at > 0 && lines[at - 1].time > line.time) at -= 1;
    lines.splice(at, 0, line);
    if (lines.length > SCROLLBACK) {
      const gone = lines.splice(0, lines.length - SCROLLBACK);
      for (const old of gone) if (old.id) this.seenIds.delete(old.id);
    }
    return true;
  }

  /** Members sorted by rank, then by name. */
  sortedMembers(prefixes) {
    const rank = (member) => {
      const at = member.prefix ? prefixes.indexOf(member.prefix[0]) : -1;
      return at === -1 ? prefixes.length : at;
    };
    return [...this.members.values()].sort(
      (a, b) => rank(a) - rank(b) || casefold(a.nick).localeCompare(casefold(b.nick)),
    );
  }

  /** The time of the newest line that came from the server's clock. */
  newestServerTime() {
    for (let i = this.lines.length - 1; i >= 0; i -= 1) {
      if (this.lines[i].serverTime) return this.lines[i].serverTime;
    }
    return null;
  }
}

/** The session: one WebSocket, reconnecting with backoff until the user leaves. */
export class ChatSession extends EventTarget {
  constructor({ url, nick, channels = [], storage = null, password = "", login = null }) {
    super();
    this.password = password;
    this.login = login && login.account ? login : null; // {account, password}: SASL PLAIN
    this.account = null;
    this.url = url;
    this.wantedNick = nick;
    this.nick = nick;
    this.storage = storage;
    this.conversations = new Map();
    this.order = [];
    this.current = SERVER_BUFFER;
    this.status = "offline";
    this.caps = new Set();
    this.isupport = { CHANTYPES: "#", PREFIX: "(ov)@+", CHATHISTORY: "0" };
    this.serverName = "";
    this.socket = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.leaving = false;
    this.registered = false;
    this.batches = new Map();
    this.pacer = new Pacer((say) => this.deliver(say));
    this.autojoin = new Set(channels);
    /** Whether the page is in view; when not, even the current conversation counts unread. */
    this.visible = true;
    this.people = new Map(); // casefolded nick -> Person (people.js)
    this.peopleVersion = 0;
    this.markTimer = null;
    this.settings = {};
    try {
      this.settings = JSON.parse((storage && storage.getItem("twistedchat.settings")) || "{}") || {};
    } catch {
      // a damaged setting: start without
    }
    this.conversation(SERVER_BUFFER, "server");
    for (const channel of channels) this.conversation(channel, "channel");
    if (channels.length) this.current = casefold(channels[0]);
  }

  // -- the model -------------------------------------------------------------------------------

  conversation(name, kind = null) {
    const key = name === SERVER_BUFFER ? name : casefold(name);
    let found = this.conversations.get(key);
    if (!found && kind) {
      found = new Conversation(name, kind);
      this.conversations.set(key, found);
      this.order.push(key);
      if (kind === "query") this.watch(name);
    }
    return found;
  }

  find(name) {
    return this.conversations.get(name === SERVER_BUFFER ? name : casefold(name)) || null;
  }

  get prefixSymbols() {
    const match = /^\(([^)]*)\)(.*)$/.exec(this.isupport.PREFIX || "");
    return match ? match[2] : "@+";
  }

  isMe(nick) {
    return casefold(nick) === casefold(this.nick);
  }

  select(name) {
    const conv = this.find(name);
    if (!conv) return;
    const leaving = this.conversations.get(this.current);
    if (leaving && leaving !== conv && leaving.kind !== "server" && this.visible) this.markRead(leaving);
    this.current = name === SERVER_BUFFER ? name : casefold(name);
    conv.unread = 0;
    conv.mentions = 0;
    this.placeMarker(conv);
    this.askAway();
    if (this.visible) this.markSoon();
    this.changed();
  }

  close(name) {
    const conv = this.find(name);
    if (!conv || conv.kind === "server") return;
    if (conv.kind === "channel" && conv.joined) this.send("PART", conv.name);
    const key = casefold(name);
    this.conversations.delete(key);
    this.order = this.order.filter((k) => k !== key);
    this.autojoin.delete(conv.name);
    if (this.current === key) this.current = SERVER_BUFFER;
    this.remember();
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  /** Show a line in a conversation (the current one when not named). */
  show(name, line) {
    const conv = name ? this.conversation(name, isChannel(name, this.isupport.CHANTYPES) ? "channel" : "query")
      : this.conversations.get(this.current);
    const entry = { time: Date.now(), kind: "info", nick: "", text: "", ...line };
    if (!conv.add(entry)) return;
    const key = conv.kind === "server" ? SERVER_BUFFER : casefold(conv.name);
    const unseen = key !== this.current || !this.visible;
    if (unseen && (entry.kind === "message" || entry.kind === "action") && !entry.history && !entry.self) {
      conv.unread += 1;
      if (conv.kind === "query" || mentions(entry.text, this.nick)) conv.mentions += 1;
    } else if (!unseen && entry.serverTime) {
      this.markSoon();
    }
    this.changed();
  }

  info(text, kind = "info", name = null) {
    this.show(name, { kind, text });
  }

  remember() {
    if (!this.storage) return;
    const channels = [...this.conversations.values()]
      .filter((c) => c.kind === "channel").map((c) => c.name);
    this.storage.setItem("twistedchat.channels", JSON.stringify(channels));
    this.storage.setItem("twistedchat.nick", this.wantedNick);
  }

  // -- the connection --------------------------------------------------------------------------

  connect() {
    this.leaving = false;
    clearTimeout(this.reconnectTimer);
    this.setStatus("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url, ["text.ircv3.net"]);
    } catch (error) {
      this.info(`Cannot connect to ${this.url}: ${error.message}`, "error");
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => this.opened());
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") this.receive(event.data);
    });
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  opened() {
    this.registered = false;
    this.caps = new Set();
    this.nick = this.wantedNick;
    this.setStatus("registering");
    this.send("CAP", "LS", "302");
    if (this.password) this.send("PASS", this.password);
    this.send("NICK", this.nick);
    this.send("USER", "web", "0", "*", "twistedchat web client");
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.registered = false;
    if (this.pacer.waiting.length) {
      this.info(`${this.pacer.waiting.length} lines were not sent.`, "error");
    }
    this.pacer.clear();
    for (const conv of this.conversations.values()) {
      if (conv.kind === "channel") {
        if (conv.joined) this.autojoin.add(conv.name);
        conv.joined = false;
        conv.members.clear();
      }
    }
    const why = event.reason ? ` (${event.reason})` : "";
    this.info(`Disconnected${why}.`, "error");
    if (this.leaving) this.setStatus("offline");
    else this.scheduleReconnect();
  }

  scheduleReconnect() {
    const delay = Math.min(BACKOFF_MOST, BACKOFF_FIRST * 2 ** this.attempt);
    const jittered = Math.round(delay * (0.75 + Math.random() * 0.25));
    this.attempt += 1;
    this.setStatus("waiting");
    this.info(`Reconnecting in ${Math.ceil(jittered / 1000)} s…`);
    this.reconnectTimer = setTimeout(() => this.connect(), jittered);
  }

  /** Leave for good: QUIT, and no reconnect. */
  quit(reason = "Leaving") {
    this.leaving = true;
    clearTimeout(this.reconnectTimer);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.send("QUIT", reason);
    } else {
      this.setStatus("offline");
    }
  }

  setStatus(status) {
    this.status = status;
    this.changed();
  }

  send(command, ...params) {
    this.sendRaw(buildLine(command, ...params));
  }

  sendRaw(line) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      this.info("Not connected: the line was not sent.", "error");
      return false;
    }
    this.socket.send(line);
    return true;
  }

  // -- what the user does ----------------------------------------------------------------------

  /** Join a channel and show it (a channel already joined is just shown). */
  join(channel, key = null) {
    this.autojoin.add(channel);
    const conv = this.conversation(channel, "channel");
    this.remember();
    if (this.registered && !conv.joined) {
      if (key) this.send("JOIN", channel, key);
      else this.send("JOIN", channel);
    }
    this.select(channel);
  }

  /** Say something (or /me it) to a channel or a nick. */
  say(target, text, action = false) {
    this.sayLines(target, [text], action);
  }

  /** Say several lines (a paste), paced under the server's flood limit; false if refused. */
  sayLines(target, texts, action = false) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      this.info("Not connected: nothing was sent.", "error");
      return false;
    }
    const lines = texts.map((text) => ({ target, text, action }));
    if (!this.pacer.push(lines)) {
      this.info(`Too much at once: ${this.pacer.waiting.length} lines are still waiting to go out.`,
        "error");
      return false;
    }
    if (this.pacer.waiting.length) this.changed();
    return true;
  }

  /** One paced line goes out now. */
  deliver({ target, text, action }) {
    const body = action ? `\x01ACTION ${text}\x01` : text;
    if (!this.sendRaw(buildLine("PRIVMSG", target, body))) return;
    if (!this.caps.has("echo-message")) {
      this.show(target, { kind: action ? "action" : "message", nick: this.nick, text, self: true });
    }
    this.changed();
  }

  changeNick(nick) {
    this.wantedNick = nick;
    this.remember();
    if (this.socket) this.send("NICK", nick);
  }

  // -- what the server says --------------------------------------------------------------------

  receive(text) {
    const message = parseLine(text);
    if (!message) return;
    const batch = message.tags.batch && this.batches.get(message.tags.batch);
    if (batch && message.command !== "BATCH") {
      batch.lines.push(message);
      return;
    }
    this.handle(message, null);
  }

  handle(message, history) {
    const handler = this[`on_${message.command}`];
    if (handler) handler.call(this, message, history);
    else if (/^[45]\d\d$/.test(message.command)) this.onError(message);
    else if (/^\d\d\d$/.test(message.command) && message.params.length > 1) {
      this.info(message.params[message.params.length - 1], "info", SERVER_BUFFER);
    }
  }

  lineTime(message) {
    const stamp = message.tags.time;
    const parsed = stamp ? Date.parse(stamp) : NaN;
    return Number.isNaN(parsed) ? { time: Date.now(), serverTime: null } : { time: parsed, serverTime: stamp };
  }

  onError(message) {
    const text = message.params.slice(1).join(" ");
    if (message.command === "422") {
      this.info(text, "info", SERVER_BUFFER); // no message of the day: not an error
      return;
    }
    this.info(`${message.command}: ${text}`, "error");
    if (message.command === "464") {
      // A wrong or missing server password: trying again would fail the same way.
      this.leaving = true;
      this.dispatchEvent(new CustomEvent("refused", { detail: `The server refused the password: ${text}` }));
    }
    if (message.command === "433" && !this.registered) {
      // The nick is taken: try another one until registration succeeds.
      this.nick = `${this.nick.slice(0, 28)}_`;
      this.send("NICK", this.nick);
    }
  }

  on_PING(message) {
    this.send("PONG", ...message.params);
  }

  on_CAP(message) {
    const sub = (message.params[1] || "").toUpperCase();
    if (sub === "LS") {
      const more = message.params[2] === "*";
      const list = message.params[more ? 3 : 2] || "";
      this.offered = (this.offered || []).concat(list.split(" ").filter(Boolean).map((c) => c.split("=")[0]));
      if (more) return;
      const wanted = this.login ? [...WANTED_CAPS, "sasl"] : WANTED_CAPS;
      const request = wanted.filter((cap) => this.offered.includes(cap));
      if (this.login && !request.includes("sasl")) {
        this.leaving = true;
        this.dispatchEvent(new CustomEvent("refused", { detail: "This server has no account login (no SASL)." }));
        return;
      }
      this.offered = [];
      if (request.length) this.send("CAP", "REQ", request.join(" "));
      else this.send("CAP", "END");
    } else if (sub === "ACK") {
      for (const cap of (message.params[2] || "").split(" ").filter(Boolean)) {
        if (cap.startsWith("-")) this.caps.delete(cap.slice(1));
        else this.caps.add(cap);
      }
      if (!this.registered && !this.startSasl()) this.send("CAP", "END");
    } else if (sub === "NAK") {
      if (!this.registered) this.send("CAP", "END");
    }
  }

  on_001(message) {
    this.registered = true;
    this.attempt = 0;
    this.nick = message.params[0];
    this.serverName = message.source || "";
    this.setStatus("online");
    this.info(message.params[1] || "Welcome", "info", SERVER_BUFFER);
    this.welcomed();
    for (const channel of this.autojoin) this.send("JOIN", channel);
  }

  on_005(message) {
    for (const token of message.params.slice(1, -1)) {
      const eq = token.indexOf("=");
      if (eq === -1) this.isupport[token] = "";
      else this.isupport[token.slice(0, eq)] = token.slice(eq + 1);
    }
  }

  on_JOIN(message) {
    const nick = nickOf(message.source);
    const channel = message.params[0];
    const conv = this.conversation(channel, "channel");
    if (this.isMe(nick)) {
      conv.name = channel;
      conv.joined = true;
      conv.members.clear();
      this.autojoin.add(channel);
      this.remember();
      this.info(`You joined ${channel}`, "event", channel);
      this.requestHistory(conv);
      this.whoChannel(channel);
    } else {
      conv.members.set(casefold(nick), { nick, prefix: "" });
      this.show(channel, { kind: "event", text: `${nick} joined`, ...this.lineTime(message) });
    }
    this.changed();
  }

  /** CHATHISTORY (draft/chathistory): the latest lines, or those since the newest one shown. */
  requestHistory(conv) {
    if (!this.caps.has("draft/chathistory") || !this.caps.has("batch")) return;
    const most = Number.parseInt(this.isupport.CHATHISTORY || "0", 10);
    const count = most > 0 ? Math.min(most, HISTORY_LINES) : HISTORY_LINES;
    const since = conv.newestServerTime();
    this.send("CHATHISTORY", "LATEST", conv.name, since ? `timestamp=${since}` : "*", String(count));
  }

  on_BATCH(message) {
    const ref = message.params[0] || "";
    if (ref.startsWith("+")) {
      this.batches.set(ref.slice(1), { type: message.params[1], params: message.params.slice(2), lines: [] });
    } else if (ref.startsWith("-")) {
      const batch = this.batches.get(ref.slice(1));
      this.batches.delete(ref.slice(1));
      if (!batch) return;
      const history = batch.type === "chathistory" || batch.type === "draft/chathistory";
      for (const line of batch.lines) this.handle(line, history ? batch : null);
      const conv = history && this.find(batch.params[0] || "");
      // History came into the conversation in view: the "last read" line may belong in it.
      if (conv && !conv.shownMarker && this.conversations.get(this.current) === conv) this.placeMarker(conv);
    }
  }

  on_PART(message) {
    const nick = nickOf(message.source);
    const channel = message.params[0];
    const conv = this.find(channel);
    if (!conv) return;
    const reason = message.params[1] ? ` (${message.params[1]})` : "";
    if (this.isMe(nick)) {
      conv.joined = false;
      conv.members.clear();
      this.autojoin.delete(conv.name);
      this.remember();
      this.info(`You left ${channel}${reason}`, "event", channel);
    } else {
      conv.members.delete(casefold(nick));
      this.show(channel, { kind: "event", text: `${nick} left${reason}`, ...this.lineTime(message) });
    }
  }

  on_KICK(message) {
    const [channel, victim, why = ""] = message.params;
    const conv = this.find(channel);
    if (!conv) return;
    const text = `${victim} was kicked by ${nickOf(message.source)}${why ? ` (${why})` : ""}`;
    if (this.isMe(victim)) {
      conv.joined = false;
      conv.members.clear();
      this.autojoin.delete(conv.name);
      this.remember();
    } else {
      conv.members.delete(casefold(victim));
    }
    this.show(channel, { kind: "event", text, ...this.lineTime(message) });
  }

  on_QUIT(message) {
    const nick = nickOf(message.source);
    const key = casefold(nick);
    const why = message.params[0] ? ` (${message.params[0]})` : "";
    for (const conv of this.conversations.values()) {
      if (conv.members.delete(key)) {
        this.show(conv.name, { kind: "event", text: `${nick} quit${why}`, ...this.lineTime(message) });
      }
    }
  }

  on_NICK(message) {
    const old = nickOf(message.source);
    const nick = message.params[0];
    if (this.isMe(old)) {
      this.nick = nick;
      if (this.registered) {
        this.wantedNick = nick;
        this.remember();
      }
      this.info(`You are now known as ${nick}`, "event");
    }
    this.renameQuery(old, nick);
    const person = this.people.get(casefold(old));
    if (person) {
      this.people.delete(casefold(old));
      person.nick = nick;
      this.people.set(casefold(nick), person);
    }
    for (const conv of this.conversations.values()) {
      const member = conv.members.get(casefold(old));
      if (member) {
        conv.members.delete(casefold(old));
        conv.members.set(casefold(nick), { nick, prefix: member.prefix });
        this.show(conv.name, { kind: "event", text: `${old} is now ${nick}`, ...this.lineTime(message) });
      }
    }
    this.changed();
  }

  /** A private conversation follows its person's new nick (unless one with that nick is open). */
  renameQuery(old, nick) {
    const oldKey = casefold(old);
    const newKey = casefold(nick);
    const query = this.conversations.get(oldKey);
    if (!query || query.kind !== "query" || (oldKey !== newKey && this.conversations.has(newKey))) return;
    query.name = nick;
    this.conversations.delete(oldKey);
    this.conversations.set(newKey, query);
    this.order = this.order.map((key) => (key === oldKey ? newKey : key));
    if (this.current === oldKey) this.current = newKey;
    this.watch(nick);
    query.add({ time: Date.now(), kind: "event", nick: "", text: `${old} is now ${nick}` });
  }

  on_ERROR(message) {
    this.info(`Server: ${message.params[0] || "closing"}`, "error");
  }

  on_FAIL(message) {
    const [command, code, ...rest] = message.params;
    this.info(`${command} ${code}: ${rest[rest.length - 1] || ""}`, "error");
  }

  on_353(message) {
    const channel = message.params[2];
    const conv = this.find(channel);
    if (!conv) return;
    const symbols = this.prefixSymbols;
    for (const entry of (message.params[3] || "").split(" ").filter(Boolean)) {
      let at = 0;
      while (at < entry.length && symbols.includes(entry[at])) at += 1;
      const nick = nickOf(entry.slice(at));
      conv.members.set(casefold(nick), { nick, prefix: entry.slice(0, at) });
    }
    this.changed();
  }

  on_366() {}

  on_004() {}

  on_332(message) {
    const conv = this.find(message.params[1]);
    if (conv) {
      conv.topic = message.params[2] || "";
      this.changed();
    }
  }

  on_333() {}

  on_331(message) {
    const conv = this.find(message.params[1]);
    if (conv) {
      conv.topic = "";
      this.changed();
    }
  }

  on_TOPIC(message) {
    const [channel, topic = ""] = message.params;
    const conv = this.find(channel);
    if (!conv) return;
    conv.topic = topic;
    const text = `${nickOf(message.source)} set the topic: ${topic}`;
    this.show(channel, { kind: "event", text, ...this.lineTime(message) });
  }

  on_MODE(message) {
    const [target, modes = "", ...args] = message.params;
    const conv = this.find(target);
    if (!conv || conv.kind !== "channel") return;
    // Keep member prefixes right for +o/+v and friends (PREFIX modes take one argument each).
    const match = /^\(([^)]*)\)(.*)$/.exec(this.isupport.PREFIX || "");
    const prefixModes = match ? match[1] : "ov";
    const symbols = match ? match[2] : "@+";
    let adding = true;
    let arg = 0;
    for (const mode of modes) {
      if (mode === "+" || mode === "-") {
        adding = mode === "+";
        continue;
      }
      const rank = prefixModes.indexOf(mode);
      if (rank !== -1) {
        const member = conv.members.get(casefold(args[arg] || ""));
        arg += 1;
        if (!member) continue;
        const symbol = symbols[rank];
        const set = new Set(member.prefix);
        if (adding) set.add(symbol);
        else set.delete(symbol);
        member.prefix = [...symbols].filter((s) => set.has(s)).join("");
      } else if ("beIkl".includes(mode) && (adding || mode !== "l")) {
        arg += 1;
      }
    }
    const text = `${nickOf(message.source)} sets mode ${[modes, ...args].join(" ")}`;
    this.show(target, { kind: "event", text, ...this.lineTime(message) });
  }

  on_PRIVMSG(message, history) {
    this.message(message, history, false);
  }

  on_NOTICE(message, history) {
    this.message(message, history, true);
  }

  message(message, history, notice) {
    const nick = nickOf(message.source);
    const [target, raw = ""] = message.params;
    let text = raw;
    let kind = notice ? "notice" : "message";
    if (text.startsWith("\x01")) {
      const body = text.replace(/^\x01|\x01$/g, "");
      if (!body.startsWith("ACTION ")) {
        if (!notice && body.split(" ")[0] === "VERSION") {
          this.send("NOTICE", nick, "\x01VERSION twistedchat web client\x01");
        }
        return;
      }
      text = body.slice(7);
      kind = "action";
    }
    let where;
    if (isChannel(target, this.isupport.CHANTYPES)) where = target;
    else if (!message.source || !message.source.includes("!")) where = null; // the server's notices
    else where = this.isMe(nick) ? target : nick;
    const bot = "bot" in message.tags;
    if (bot && nick && !this.person(nick).bot) {
      this.person(nick).bot = true;
      this.peopleVersion += 1; // its earlier lines get the badge too
    }
    const line = {
      kind, nick, text, ...this.lineTime(message), id: message.tags.msgid || null,
      self: this.isMe(nick), history: Boolean(history), bot,
    };
    if (where === null) this.show(SERVER_BUFFER, line);
    else this.show(where, line);
  }
}

Object.assign(ChatSession.prototype, peopleMixin, saslMixin);
