// What the user types: slash commands (/join /part /msg /me /nick /topic ...) and plain text.

import { isChannel } from "./irc.js";

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

