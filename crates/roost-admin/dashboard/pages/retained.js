// The retained-message browser: list by topic filter (wildcards as in a
// subscription), page, view one message, delete it.

import { get, del, query } from "../api.js";
import { h, table, pager, toast, errorText, fmtTime } from "../dom.js";

const LIMIT = 100;

function retainedPath(topic) {
  return `/api/v1/retained/${encodeURIComponent(topic)}`;
}

export default {
  title: "Retained messages",
  render(root) {
    const filter = h("input", { id: "retained-filter", type: "search", name: "filter", value: "#" });
    const list = h("div", { "aria-live": "polite" });
    const detail = h("div");
    let page = 1;

    async function load(p = page) {
      page = p;
      try {
        const body = await get(`/api/v1/retained${query({ filter: filter.value.trim() || "#", page, limit: LIMIT })}`);
        list.replaceChildren(table(`Retained messages matching ${filter.value.trim() || "#"}`, [
          { label: "Topic", value: (m) => h("button", { type: "button", class: "secondary", onclick: () => view(m.topic) }, m.topic) },
          { label: "QoS", num: true, value: (m) => m.qos },
          { label: "Size", num: true, value: (m) => `${m.payload_size} B` },
          { label: "Stored", value: (m) => fmtTime(m.stored_at) },
          { label: "Actions", value: (m) => h("button", { type: "button", class: "danger", onclick: () => remove(m.topic), "aria-label": `Delete ${m.topic}` }, "Delete") },
        ], body?.data || [], "No retained message matches."), pager(body?.meta, load));
      } catch (e) {
        list.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot list retained messages: ${errorText(e)}`));
      }
    }

    async function view(topic) {
      try {
        const m = await get(retainedPath(topic));
        const heading = h("h2", { tabindex: "-1" }, `Retained on ${m.topic}`);
        detail.replaceChildren(h("div", { class: "panel", role: "region", "aria-label": `Retained message on ${m.topic}` },
          heading,
          h("p", {}, `QoS ${m.qos}, ${m.payload_size} bytes${m.encoding === "base64" ? ", binary (base64)" : ""}, stored ${fmtTime(m.stored_at)}`),
          h("pre", { "aria-label": "Payload" }, m.payload ?? ""),
          h("button", { type: "button", class: "danger", onclick: () => remove(m.topic) }, `Delete ${m.topic}`)));
        heading.focus();
      } catch (e) {
        detail.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot read ${topic}: ${errorText(e)}`));
      }
    }

    async function remove(topic) {
      if (!window.confirm(`Delete the retained message on ${topic}?`)) return;
      try {
        await del(retainedPath(topic));
        toast(`Deleted the retained message on ${topic}`);
        detail.replaceChildren();
        await load();
      } catch (e) {
        toast(`Cannot delete ${topic}: ${errorText(e)}`);
      }
    }

    const form = h("form", { class: "inline", role: "search", "aria-label": "Browse retained messages" },
      h("label", { for: "retained-filter" }, "Topic filter", filter),
      h("button", { type: "submit" }, "Browse"));
    form.addEventListener("submit", (e) => { e.preventDefault(); load(1); });
    root.append(h("h1", {}, "Retained messages"), form, list, detail);
    load(1);
  },
};
