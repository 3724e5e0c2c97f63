// Clients: search by client id (substring) or user name, page through the
// list, open one client's detail (its connection, subscriptions, queue,
// inflight), subscribe or unsubscribe it (as if it had sent SUBSCRIBE /
// UNSUBSCRIBE; no SUBACK goes to it) and kick it (DISCONNECT 0x98
// Administrative action for MQTT 5.0).

import { get, del, post, query } from "../api.js";
import { h, table, pager, toast, errorText, fmtTime, fmtNumber } from "../dom.js";

const LIMIT = 50;

export default {
  title: "Clients",
  render(root) {
    const like = h("input", { id: "client-search", type: "search", name: "like", placeholder: "part of a client id" });
    const user = h("input", { id: "client-user", type: "search", name: "username" });
    const list = h("div", { "aria-live": "polite" });
    const detail = h("div");
    let page = 1;

    async function load(p = page) {
      page = p;
      try {
        const body = await get(`/api/v1/clients${query({ like: like.value.trim(), username: user.value.trim(), page, limit: LIMIT })}`);
        const rows = body?.data || [];
        list.replaceChildren(
          table(`Clients, page ${page}`, [
            { label: "Client id", value: (c) => h("button", { type: "button", class: "secondary", onclick: () => show(c.client_id) }, c.client_id) },
            { label: "User", value: (c) => c.username || "–" },
            { label: "Peer", value: (c) => c.peer || "–" },
            { label: "Protocol", value: (c) => c.protocol || "–" },
            { label: "State", value: (c) => h("span", { class: c.connected ? "badge on" : "badge" }, c.connected ? "connected" : "offline") },
            { label: "Subscriptions", num: true, value: (c) => fmtNumber(c.subscriptions) },
            { label: "Queued", num: true, value: (c) => fmtNumber(c.queued) },
            { label: "Actions", value: (c) => c.connected ? h("button", { type: "button", class: "danger", onclick: () => kick(c.client_id), "aria-label": `Kick ${c.client_id}` }, "Kick") : "" },
          ], rows, "No client matches."),
          pager(body?.meta, load));
      } catch (e) {
        list.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot list clients: ${errorText(e)}`));
      }
    }

    async function show(id) {
      try {
        const enc = encodeURIComponent(id);
        const [c, subs] = await Promise.all([get(`/api/v1/clients/${enc}`), get(`/api/v1/clients/${enc}/subscriptions`)]);
        const subRows = Array.isArray(subs) ? subs : subs?.data || [];
        const heading = h("h2", { tabindex: "-1" }, `Client ${c.client_id}`);
        detail.replaceChildren(h("div", { class: "panel", "aria-label": `Details of ${c.client_id}`, role: "region" },
          heading,
          h("dl", { class: "cards" },
            ...[["User", c.username || "–"], ["Peer", c.peer || "–"], ["Protocol", c.protocol || "–"], ["Listener", c.listener || "–"],
              ["Connected", c.connected ? "yes" : "no"], ["Connected at", c.connected_at != null && fmtTime(c.connected_at * 1000)],
              ["Clean start", c.clean_start != null && (c.clean_start ? "yes" : "no")],
              ["Keep alive", c.keep_alive_s != null && `${c.keep_alive_s} s`],
              ["Session expiry interval", c.session_expiry_interval_s != null && (c.session_expiry_interval_s === 4294967295 ? "never" : `${c.session_expiry_interval_s} s`)],
              ["Session expires in", c.session_expires_in_s != null && `${c.session_expires_in_s} s`],
              ["Queued", fmtNumber(c.queued)], ["Inflight", c.inflight != null && fmtNumber(c.inflight)], ["Dropped", fmtNumber(c.dropped)]]
              .filter(([, v]) => v !== false && v !== undefined && v !== null)
              .map(([k, v]) => h("div", { class: "card" }, h("dt", {}, k), h("dd", {}, String(v))))),
          table(`Subscriptions of ${c.client_id}`, [
            { label: "Filter", value: (s) => h("code", {}, s.filter) },
            { label: "QoS", num: true, value: (s) => s.qos },
            { label: "No local", value: (s) => (s.no_local ? "yes" : "no") },
            { label: "Retain as published", value: (s) => (s.retain_as_published ? "yes" : "no") },
            { label: "Actions", value: (s) => h("button", { type: "button", class: "danger", onclick: () => unsubscribe(c.client_id, s.filter), "aria-label": `Unsubscribe ${c.client_id} from ${s.filter}` }, "Unsubscribe") },
          ], subRows, "No subscriptions."),
          subscribeForm(c.client_id),
          c.connected ? h("p", {}, h("button", { type: "button", class: "danger", onclick: () => kick(c.client_id) }, `Kick ${c.client_id}`)) : ""));
        heading.focus();
      } catch (e) {
        detail.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot show ${id}: ${errorText(e)}`));
      }
    }

    // Subscribes the shown client to a filter (the broker grants at most
    // its Maximum QoS; retained messages follow Retain Handling 0).
    function subscribeForm(id) {
      const filter = h("input", { id: "subscribe-filter", name: "filter", required: true, placeholder: "sensors/+/temp" });
      const qos = h("select", { id: "subscribe-qos", name: "qos" }, ...[0, 1, 2].map((q) => h("option", { value: String(q) }, String(q))));
      const form = h("form", { class: "inline", "aria-label": `Subscribe ${id}` },
        h("label", { for: "subscribe-filter" }, "Subscribe to filter", filter),
        h("label", { for: "subscribe-qos" }, "QoS", qos),
        h("button", { type: "submit" }, "Subscribe"));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const f = filter.value.trim();
        if (!f) return;
        try {
          await post(`/api/v1/clients/${encodeURIComponent(id)}/subscriptions`, { filter: f, qos: Number(qos.value) });
          toast(`Subscribed ${id} to ${f}`);
          await show(id);
        } catch (err) {
          toast(`Cannot subscribe ${id}: ${errorText(err)}`);
        }
      });
      return form;
    }

    async function unsubscribe(id, filter) {
      try {
        await del(`/api/v1/clients/${encodeURIComponent(id)}/subscriptions${query({ filter })}`);
        toast(`Unsubscribed ${id} from ${filter}`);
        await show(id);
      } catch (e) {
        toast(`Cannot unsubscribe ${id}: ${errorText(e)}`);
      }
    }

    async function kick(id) {
      if (!window.confirm(`Disconnect ${id}?`)) return;
      try {
        await del(`/api/v1/clients/${encodeURIComponent(id)}`);
        toast(`Kicked ${id}`);
        detail.replaceChildren();
        await load();
      } catch (e) {
        toast(`Cannot kick ${id}: ${errorText(e)}`);
      }
    }

    const form = h("form", { class: "inline", role: "search", "aria-label": "Search clients" },
      h("label", { for: "client-search" }, "Client id contains", like),
      h("label", { for: "client-user" }, "User name", user),
      h("button", { type: "submit" }, "Search"),
      h("button", { type: "button", class: "secondary", onclick: () => load() }, "Refresh"));
    form.addEventListener("submit", (e) => { e.preventDefault(); load(1); });
    root.append(h("h1", {}, "Clients"), form, list, detail);
    load(1);
  },
};
