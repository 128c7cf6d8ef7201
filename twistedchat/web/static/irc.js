// IRC lines for the browser: parse and build them (IRCv3 message tags included), name rules.

const TAG_UNESCAPES = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };

/** The value of an escaped message-tag, unescaped. */
export function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => (c in TAG_UNESCAPES ? TAG_UNESCAPES[c] : c));
}

/** One IRC line (without CR LF) as {tags, source, command, params}; null for an empty line. */
export function parseLine(line) {
  let rest = line;
  const tags = {};
  if (rest.startsWith("@")) {
    const space = rest.indexOf(" ");
    if (space === -1) return null;
    for (const item of rest.slice(1, space).split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq === -1) tags[item] = "";
      else tags[item.slice(0, eq)] = unescapeTag(item.slice(eq + 1));
    }
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  let source = null;
  if (rest.startsWith(":")) {
    const space = rest.indexOf(" ");
    if (space === -1) return null;
    source = rest.slice(1, space);
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  const params = [];
  while (rest) {
    if (rest.startsWith(":")) {
      params.push(rest.slice(1));
      break;
    }
    const space = rest.indexOf(" ");
    if (space === -1) {
      params.push(rest);
      break;
    }
    params.push(rest.slice(0, space));
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  const command = params.shift();
  if (!command) return null;
  return { tags, source, command: command.toUpperCase(), params };
}

/** A line from a command and its parameters; the last one becomes trailing when it must. */
export function buildLine(command, ...params) {
  const words = [command];
  params.forEach((param, index) => {
    const text = String(param).replace(/[\r\n\0]/g, " ");
    const last = index === params.length - 1;
    if (last && (text === "" || text.includes(" ") || text.startsWith(":"))) words.push(":" + text);
    else words.push(text);
  });
  return words.join(" ");
}

/** The nick of a `nick!user@host` source. */
export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang === -1 ? source : source.slice(0, bang);
}

/** rfc1459 casemapping, the daemon's (ISUPPORT CASEMAPPING): for comparing names. */
export function casefold(name) {
  return name.toLowerCase().replace(/[[\]\\~]/g, (c) => ({ "[": "{", "]": "}", "\\": "|", "~": "^" })[c]);
}

/** Whether a target names a channel, given the server's CHANTYPES. */
export function isChannel(name, chantypes = "#&") {
  return name.length > 0 && chantypes.includes(name[0]);
}

/** A stable hue (0-359) for a nick, so the same person always has the same colour. */
export function nickHue(nick) {
  let hash = 0;
  for (const char of casefold(nick)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** The bytes a string takes in UTF-8 (what the server's line limit counts). */
export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}
