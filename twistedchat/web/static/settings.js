// The settings panel: one's own display name, colour and avatar (draft/metadata-2).

import { $ } from "./dom.js";

const FIELDS = [["#settings-name", "display-name"], ["#settings-colour", "color"], ["#settings-avatar", "avatar"]];

/** Wire the panel's open button and form to ``session``. */
export function setUpSettings(session) {
  const dialog = $("#settings");
  $("#open-settings").addEventListener("click", () => {
    const offered = session.caps.has("draft/metadata-2");
    $("#settings-note").textContent = offered ? "" : "This server does not keep display names (no draft/metadata-2).";
    const mine = session.known(session.nick).meta;
    for (const [selector, key] of FIELDS) $(selector).value = mine[key] || (session.settings || {})[key] || "";
    dialog.showModal();
  });
  $("#settings-cancel").addEventListener("click", () => dialog.close());
  $("#settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const colour = $("#settings-colour").value.trim();
    if (colour && !/^#[0-9a-f]{6}$/i.test(colour)) {
      $("#settings-note").textContent = "A colour is written #rrggbb, for example #1f7a4d.";
      return;
    }
    const avatar = $("#settings-avatar").value.trim();
    if (avatar && !/^https?:\/\//i.test(avatar)) {
      $("#settings-note").textContent = "An avatar is a web address (http:// or https://).";
      return;
    }
    for (const [selector, key] of FIELDS) session.setMetadata(key, $(selector).value.trim());
    dialog.close();
  });
}
