// Account login with SASL PLAIN (IRCv3 sasl-3.1) during registration: AUTHENTICATE in 400-byte
// base64 pieces, then CAP END on success; a refusal signs out with the server's reason.
// Mixed into ChatSession (client.js).

const PIECE = 400;
/** The server's own conversation (client.js's SERVER_BUFFER; not imported: client.js imports this). */
const SERVER_NAME = "*server*";

/** The AUTHENTICATE parameters carrying PLAIN's ``\0account\0password`` (UTF-8, base64). */
export function plainPieces(account, password) {
  const bytes = new TextEncoder().encode(`\0${account}\0${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const text = btoa(binary);
  const pieces = [];
  for (let at = 0; at < text.length; at += PIECE) pieces.push(text.slice(at, at + PIECE));
  if (!pieces.length || pieces[pieces.length - 1].length === PIECE) pieces.push("+");
  return pieces;
}

export const saslMixin = {
  /** After CAP ACK: start logging in when an account was given and sasl acknowledged. */
  startSasl() {
    if (!this.login || !this.caps.has("sasl") || this.registered) return false;
    this.send("AUTHENTICATE", "PLAIN");
    return true;
  },

  on_AUTHENTICATE(message) {
    if (message.params[0] !== "+" || !this.login) return;
    for (const piece of plainPieces(this.login.account, this.login.password)) {
      this.send("AUTHENTICATE", piece);
    }
  },

  /** RPL_LOGGEDIN: ``<nick> <source> <account> :text``. */
  on_900(message) {
    this.account = message.params[2] || null;
    this.info(message.params[3] || `Logged in as ${this.account}`, "info", SERVER_NAME);
  },

  on_903() {
    if (!this.registered) this.send("CAP", "END");
  },

  on_904(message) {
    this.saslRefused(message);
  },
  on_905(message) {
    this.saslRefused(message);
  },
  on_906() {},
  on_907() {},
  on_908() {},

  saslRefused(message) {
    // A wrong account or password: trying again would fail the same way.
    this.leaving = true;
    const why = message.params[message.params.length - 1] || "login refused";
    this.dispatchEvent(new CustomEvent("refused", { detail: `The server refused the login: ${why}` }));
    this.send("QUIT", "Login failed");
  },
};
