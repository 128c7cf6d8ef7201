// What the session knows about people and where the user has read to: MONITOR (online, offline,
// away through extended-monitor), WHOX on join, bot mode, SETNAME, draft/metadata-2 (display name,
// avatar, colour) and draft/read-marker (MARKREAD). Mixed into ChatSession (client.js).

import { casefold, isChannel, nickOf } from "./irc.js";

/** The metadata keys the page follows (METADATA * SUB). */
export const METADATA_KEYS = ["display-name", "avatar", "color"];
/** WHOX tokens: a channel's members on joining, and one person the page MONITORs. */
const WHO_CHANNEL = "745";
const WHO_PERSON = "746";
/** Characters of nicks one MONITOR line carries. */
const MONITOR_LINE = 400;
/** Milliseconds the page waits before telling the server what was read (one MARKREAD per pause). */
const MARK_DELAY = 300;

/** What the page knows of one nick. */
export class Person {
  constructor(nick) {
    this.nick = nick;
    this.presence = null; // "online" | "offline" | null (not monitored)
    this.away = null; // the away text ("" when it is not known), null when here
    this.awayAsked = false; // WHOX asked since it came online
    this.bot = false;
    this.realname = "";
    this.meta = {}; // display-name, avatar, color (what was set)
  }

  get displayName() {
    return (this.meta["display-name"] || "").trim() || this.nick;
  }

  /** The avatar URL when it is a web address (http or https), else null. */
  get avatar() {
    const value = this.meta.avatar || "";
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  /** The colour set in metadata when it is #rrggbb, else null (the nick's hue is used). */
  get colour() {
    const value = (this.meta.color || "").trim();
    return /^#[0-9a-f]{6}$/i.test(value) ? value : null;
  }
}

/** Handlers and helpers ChatSession takes in (``this`` is the session). */
export const peopleMixin = {
  person(nick) {
    const key = casefold(nick);
    let found = this.people.get(key);
    if (!found) {
      found = new Person(nick);
      this.people.set(key, found);
    }
    return found;
  },

  /** The person behind a nick, or a blank one (not kept) when the page knows nothing of it. */
  known(nick) {
    return this.people.get(casefold(nick)) || new Person(nick);
  },

  /** Something shown about people changed: the view redraws the lines (names, avatars). */
  peopleChanged() {
    this.peopleVersion += 1;
    this.changed();
  },

  /** Right after 001, before JOINs: subscribe to metadata, set one's own, MONITOR the queries. */
  welcomed() {
    if (this.caps.has("draft/metadata-2")) {
      this.send("METADATA", "*", "SUB", ...METADATA_KEYS);
      if (this.account) {
        // The server keeps an account's values: learn them (set elsewhere, perhaps).
        this.send("METADATA", "*", "GET", ...METADATA_KEYS);
      } else {
        // Without an account they last as long as the connection: set them again.
        for (const [key, value] of Object.entries(this.settings || {})) {
          if (value && METADATA_KEYS.includes(key)) this.send("METADATA", "*", "SET", key, value);
        }
      }
    }
    for (const person of this.people.values()) {
      person.presence = null; // a new connection: MONITOR and WHOX tell again
      person.away = null;
    }
    const queries = [...this.conversations.values()].filter((c) => c.kind === "query");
    this.watch(...queries.map((query) => query.name));
  },

  /** MONITOR nicks the user talks to privately (when the server offers MONITOR): as few lines as
   * fit, so a page with many conversations does not flood on connecting. */
  watch(...nicks) {
    if (!this.registered || !("MONITOR" in this.isupport) || !nicks.length) return;
    let batch = [];
    for (const nick of nicks) {
      if (batch.length && [...batch, nick].join(",").length > MONITOR_LINE) {
        this.send("MONITOR", "+", batch.join(","));
        batch = [];
      }
      batch.push(nick);
    }
    this.send("MONITOR", "+", batch.join(","));
  },

  /** Set (or with "" clear) one's own metadata; kept in the page to set again on reconnecting. */
  setMetadata(key, value) {
    this.settings = { ...(this.settings || {}), [key]: value };
    if (this.storage) this.storage.setItem("twistedchat.settings", JSON.stringify(this.settings));
    if (!this.registered || !this.caps.has("draft/metadata-2")) return;
    const current = this.known(this.nick).meta[key] || "";
    if (value === current) return;
    if (value) this.send("METADATA", "*", "SET", key, value);
    else this.send("METADATA", "*", "SET", key);
  },

  whoChannel(channel) {
    if ("WHOX" in this.isupport) this.send("WHO", channel, `%tcnfr,${WHO_CHANNEL}`);
  },

  on_730(message) {
    for (const source of (message.params[1] || "").split(",").filter(Boolean)) {
      const person = this.person(nickOf(source));
      person.presence = "online";
      person.awayAsked = false;
    }
    this.askAway();
    this.changed();
  },

  /** 730 says nothing of away: WHOX does, asked for the private conversation in view only (one
   * line per conversation opened, never one per monitored nick); extended-monitor keeps it. */
  askAway() {
    const conv = this.conversations.get(this.current);
    if (!conv || conv.kind !== "query" || !("WHOX" in this.isupport)) return;
    const person = this.known(conv.name);
    if (person.presence !== "online" || person.awayAsked) return;
    person.awayAsked = true;
    this.send("WHO", person.nick, `%tnf,${WHO_PERSON}`);
  },

  on_731(message) {
    for (const nick of (message.params[1] || "").split(",").filter(Boolean)) {
      const person = this.person(nick);
      person.presence = "offline";
      person.away = null;
    }
    this.changed();
  },

  on_732() {},
  on_733() {},

  on_734(message) {
    this.info(`Cannot follow ${message.params[2]}: the server's MONITOR list is full.`, "error");
  },

  on_315() {},

  /** WHOX: ``%tcnfr`` for a channel's members, ``%tnf`` for a monitored nick. */
  on_354(message) {
    const [, token, ...fields] = message.params;
    let nick;
    let flags;
    if (token === WHO_CHANNEL) {
      [, nick, flags] = fields;
      this.person(nick).realname = fields[3] || "";
    } else if (token === WHO_PERSON) {
      [nick, flags] = fields;
    } else {
      return;
    }
    const person = this.person(nick);
    if ((flags || "").startsWith("G")) person.away = person.away ?? "";
    else person.away = null;
    const bot = (flags || "").includes("B");
    if (bot !== person.bot) {
      person.bot = bot;
      this.peopleVersion += 1;
    }
    this.changed();
  },

  on_AWAY(message) {
    const person = this.person(nickOf(message.source));
    person.away = message.params.length ? message.params[0] : null;
    this.changed();
  },

  on_SETNAME(message) {
    const nick = nickOf(message.source);
    const realname = message.params[0] || "";
    this.person(nick).realname = realname;
    const text = `${nick} set their name to “${realname}”`;
    for (const conv of this.conversations.values()) {
      const here = conv.members.has(casefold(nick)) || (conv.kind === "query" && casefold(conv.name) === casefold(nick));
      if (here) this.show(conv.name, { kind: "event", text, ...this.lineTime(message) });
    }
  },

  /** ``METADATA <target> <key> <visibility> [value]``: a value set, or (no value) removed. */
  on_METADATA(message) {
    const [target, key, , value] = message.params;
    this.metadataValue(target, key, message.params.length > 3 ? value : null);
  },

  /** RPL_KEYVALUE: ``<me> <target> <key> <visibility> [value]``. */
  on_761(message) {
    const [, target, key, , value] = message.params;
    this.metadataValue(target, key, message.params.length > 4 ? value : null);
  },

  /** RPL_KEYNOTSET: the key is not (or no longer) set. */
  on_766(message) {
    const [, target, key] = message.params;
    this.metadataValue(target, key, null);
  },

  on_770() {},
  on_771() {},
  on_772() {},

  /** RPL_METADATASYNCLATER: a big channel; ask once it is joined. */
  on_774(message) {
    this.send("METADATA", message.params[1], "SYNC");
  },

  metadataValue(target, key, value) {
    if (!target || !METADATA_KEYS.includes(key) || isChannel(target, this.isupport.CHANTYPES)) return;
    const person = this.person(target === "*" ? this.nick : target);
    if (value === null || value === "") delete person.meta[key];
    else person.meta[key] = value;
    this.peopleChanged();
  },

  // -- read markers ------------------------------------------------------------------------------

  /** ``MARKREAD <target> timestamp=…|*``: where the user (on any device) has read to. */
  on_MARKREAD(message) {
    const [target, param = "*"] = message.params;
    const conv = this.find(target || "");
    if (!conv || !param.startsWith("timestamp=")) return;
    const stamp = param.slice("timestamp=".length);
    if (conv.readMarker && stamp <= conv.readMarker) return;
    const first = !conv.readMarker; // the one the server sends on JOIN
    conv.readMarker = stamp;
    if (first && this.conversations.get(this.current) === conv) this.placeMarker(conv);
    // Read elsewhere: what is older than the marker is no longer unread here.
    const after = conv.lines.filter((line) => line.serverTime && line.serverTime > stamp && !line.self &&
      !line.history && (line.kind === "message" || line.kind === "action"));
    conv.unread = Math.min(conv.unread, after.length);
    if (!conv.unread) conv.mentions = 0;
    this.changed();
  },

  /** On opening a conversation: where its "last read" line goes (none if all was read). */
  placeMarker(conv) {
    const newest = conv.newestServerTime();
    conv.shownMarker = conv.readMarker && newest && newest > conv.readMarker ? conv.readMarker : null;
  },

  /** The current conversation is in view: tell the server after a short pause (one MARKREAD). */
  markSoon() {
    if (!this.caps.has("draft/read-marker") || this.markTimer) return;
    this.markTimer = setTimeout(() => {
      this.markTimer = null;
      const conv = this.conversations.get(this.current);
      if (this.visible && conv && conv.kind !== "server") this.markRead(conv);
    }, MARK_DELAY);
  },

  markRead(conv) {
    const newest = conv.newestServerTime();
    if (!newest || (conv.readMarker && newest <= conv.readMarker) || !this.registered) return;
    conv.readMarker = newest;
    this.send("MARKREAD", conv.name, `timestamp=${newest}`);
  },
};
