// Banned clients: list, add (by client id, user name or peer address, with
// an optional end and reason), remove.

import { get, post, del } from "../api.js";
import { h, table, toast, errorText, fmtTime } from "../dom.js";

export default {
  title: "Banned",
  render(root) {
    const kind = h("select", { id: "ban-kind", name: "kind" },
      h("option", { value: "clientid" }, "Client id"),
      h("option", { value: "username" }, "User name"),
      h("option", { value: "peerhost" }, "Peer address"));
    const value = h("input", { id: "ban-value", name: "value", required: true });
    const reason = h("input", { id: "ban-reason", name: "reason" });
    const until = h("input", { id: "ban-until", name: "until", type: "datetime-local" });
    const list = h("div", { "aria-live": "polite" });
    const error = h("p", { class: "error", role: "alert" });

    async function load() {
      try {
        const body = await get("/api/v1/banned");
        const rows = Array.isArray(body) ? body : body?.data || [];
        list.replaceChildren(table("Banned", [
          { label: "Kind", value: (b) => b.kind },
          { label: "Value", value: (b) => h("code", {}, b.value) },
          { label: "Until", value: (b) => (b.until ? fmtTime(b.until * 1000) : "forever") },
          { label: "Actions", value: (b) => h("button", { type: "button", class: "danger", onclick: () => remove(b), "aria-label": `Remove the ban of ${b.kind} ${b.value}` }, "Remove") },
        ], rows, "Nobody is banned."));
      } catch (e) {
        list.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot list bans: ${errorText(e)}`));
      }
    }

    async function remove(b) {
      try {
        await del(`/api/v1/banned/${encodeURIComponent(b.kind)}/${encodeURIComponent(b.value)}`);
        toast(`Removed the ban of ${b.value}`);
        await load();
      } catch (e) {
        toast(`Cannot remove the ban: ${errorText(e)}`);
      }
    }

    const form = h("form", { class: "inline", "aria-label": "Add a ban" },
      h("label", { for: "ban-kind" }, "Kind", kind),
      h("label", { for: "ban-value" }, "Value", value),
      h("label", { for: "ban-reason" }, "Reason (optional)", reason),
      h("label", { for: "ban-until" }, "Until (optional)", until),
      h("button", { type: "submit" }, "Ban"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { kind: kind.value, value: value.value.trim() };
      if (reason.value.trim()) body.reason = reason.value.trim();
      if (until.value) body.until = Math.floor(new Date(until.value).getTime() / 1000);
      try {
        await post("/api/v1/banned", body);
        toast(`Banned ${body.value}`);
        value.value = "";
        reason.value = "";
        await load();
      } catch (err) {
        error.textContent = `Cannot ban: ${errorText(err)}`;
      }
    });
    root.append(h("h1", {}, "Banned clients"), form, error, list);
    load();
  },
};
