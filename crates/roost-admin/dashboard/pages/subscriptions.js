// Subscriptions (who holds which filter) and topics (the routes: each
// filter with its number of subscribers).

import { get, query } from "../api.js";
import { h, table, pager, errorText } from "../dom.js";

const LIMIT = 100;

export default {
  title: "Subscriptions",
  render(root) {
    const filter = h("input", { id: "sub-filter", type: "search", name: "filter" });
    const client = h("input", { id: "sub-client", type: "search", name: "client_id" });
    const subs = h("div", { "aria-live": "polite" });
    const topics = h("div");

    async function loadSubs(page = 1) {
      try {
        const body = await get(`/api/v1/subscriptions${query({ filter: filter.value.trim(), client_id: client.value.trim(), page, limit: LIMIT })}`);
        subs.replaceChildren(table("Subscriptions", [
          { label: "Client id", value: (s) => s.client_id },
          { label: "Filter", value: (s) => h("code", {}, s.filter) },
          { label: "QoS", num: true, value: (s) => s.qos },
        ], body?.data || [], "No subscription matches."), pager(body?.meta, loadSubs));
      } catch (e) {
        subs.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot list subscriptions: ${errorText(e)}`));
      }
    }

    async function loadTopics(page = 1) {
      try {
        const body = await get(`/api/v1/topics${query({ page, limit: LIMIT })}`);
        topics.replaceChildren(table("Topics (routes)", [
          { label: "Filter", value: (t) => h("code", {}, t.filter) },
          { label: "Subscribers", num: true, value: (t) => t.subscribers },
        ], body?.data || [], "No routes."), pager(body?.meta, loadTopics));
      } catch (e) {
        topics.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot list topics: ${errorText(e)}`));
      }
    }

    const form = h("form", { class: "inline", role: "search", "aria-label": "Search subscriptions" },
      h("label", { for: "sub-filter" }, "Filter", filter),
      h("label", { for: "sub-client" }, "Client id", client),
      h("button", { type: "submit" }, "Search"));
    form.addEventListener("submit", (e) => { e.preventDefault(); loadSubs(1); });
    root.append(h("h1", {}, "Subscriptions and topics"), form, subs, h("h2", {}, "Topics"), topics);
    loadSubs(1);
    loadTopics(1);
  },
};
