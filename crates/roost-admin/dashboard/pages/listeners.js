// Listeners: every bound listener with its kind, address and open connections.

import { get } from "../api.js";
import { h, table, errorText, fmtNumber } from "../dom.js";

export default {
  title: "Listeners",
  render(root) {
    const list = h("div", { "aria-live": "polite" });
    root.append(h("h1", {}, "Listeners"), list);
    get("/api/v1/listeners").then((body) => {
      const rows = Array.isArray(body) ? body : body?.data || [];
      list.replaceChildren(table("Listeners", [
        { label: "Name", value: (l) => l.name || "–" },
        { label: "Kind", value: (l) => l.kind },
        { label: "Address", value: (l) => h("code", {}, l.address) },
        { label: "Connections", num: true, value: (l) => fmtNumber(l.connections) },
      ], rows, "No listeners."));
    }).catch((e) => {
      list.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot list listeners: ${errorText(e)}`));
    });
  },
};
