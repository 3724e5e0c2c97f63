// Overview: the broker's counters, and live charts of connections and of
// messages in, out and dropped per second, from GET /api/v1/stats every 2 s
// (rates are the differences between two polls). `node=all`: in a cluster
// the cluster's counters (every node's added up; a node that did not answer
// is named), on a single node its own.

import { get } from "../api.js";
import { h, fmtNumber, errorText } from "../dom.js";

const POLL_MS = 2000;
/** Points kept per chart: five minutes. */
const KEEP = 150;

function chart(el, title, series) {
  const width = Math.max(280, el.clientWidth - 16);
  const opts = {
    title, width, height: 220,
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2 }))],
    axes: [{}, { size: 60 }],
    scales: { x: { time: true } },
  };
  const data = [[], ...series.map(() => [])];
  const plot = window.uPlot ? new window.uPlot(opts, data, el) : null;
  return { plot, data };
}

export default {
  title: "Overview",
  render(root) {
    const cards = h("dl", { class: "cards" });
    const status = h("p", { class: "muted", "aria-live": "polite" }, "Loading…");
    const connEl = h("div", { class: "chart", role: "img", "aria-label": "Chart: connections over the last five minutes" });
    const msgEl = h("div", { class: "chart", role: "img", "aria-label": "Chart: messages in, out and dropped per second over the last five minutes" });
    root.append(h("h1", {}, "Overview"), status, cards, h("div", { class: "charts" }, connEl, msgEl));
    let conn = null;
    let msgs = null;
    let previous = null;
    let timer = null;
    let stopped = false;

    const card = (label, value, id) =>
      h("div", { class: "card" }, h("dt", {}, label), h("dd", { "data-stat": id }, value));

    async function poll() {
      try {
        const s = await get("/api/v1/stats?node=all");
        if (stopped) return;
        const t = (s.timestamp_ms || Date.now()) / 1000;
        let rin = 0, rout = 0, rdrop = 0;
        if (previous && t > previous.t) {
          const dt = t - previous.t;
          rin = Math.max(0, (s.messages_received - previous.s.messages_received) / dt);
          rout = Math.max(0, (s.messages_delivered - previous.s.messages_delivered) / dt);
          rdrop = Math.max(0, (s.messages_dropped - previous.s.messages_dropped) / dt);
        }
        previous = { t, s };
        cards.replaceChildren(
          card("Connections", fmtNumber(s.connections_current), "connections"),
          card("Sessions", fmtNumber(s.sessions), "sessions"),
          card("Subscriptions", fmtNumber(s.subscriptions), "subscriptions"),
          card("Retained", fmtNumber(s.retained_messages), "retained"),
          card("Messages in /s", rin.toFixed(1), "in-rate"),
          card("Messages out /s", rout.toFixed(1), "out-rate"),
          card("Dropped (total)", fmtNumber(s.messages_dropped), "dropped"),
          card("Received (total)", fmtNumber(s.messages_received), "received"),
        );
        if (Array.isArray(s.nodes)) cards.append(card("Nodes", fmtNumber(s.nodes.length), "nodes"));
        const failed = (s.failed_nodes || []).map((f) => `${f.node} (${f.error})`);
        status.textContent = `Updated ${new Date().toLocaleTimeString()}` +
          (Array.isArray(s.nodes) ? `: the cluster's ${s.nodes.length} nodes` : "") +
          (failed.length ? `; not counted, no answer: ${failed.join(", ")}` : "");
        if (!conn) conn = chart(connEl, "Connections", [["connections", "#0b5cad"]]);
        if (!msgs) msgs = chart(msgEl, "Messages per second", [["in", "#1d6b32"], ["out", "#0b5cad"], ["dropped", "#a4161a"]]);
        push(conn, t, [s.connections_current]);
        push(msgs, t, [rin, rout, rdrop]);
      } catch (e) {
        if (!stopped) status.textContent = `Cannot read the statistics: ${errorText(e)}`;
      } finally {
        if (!stopped) timer = setTimeout(poll, POLL_MS);
      }
    }

    function push(c, t, values) {
      c.data[0].push(t);
      values.forEach((v, i) => c.data[i + 1].push(v));
      if (c.data[0].length > KEEP) c.data.forEach((d) => d.shift());
      if (c.plot) c.plot.setData(c.data);
    }

    const resize = () => {
      for (const [c, el] of [[conn, connEl], [msgs, msgEl]]) {
        if (c?.plot) c.plot.setSize({ width: Math.max(280, el.clientWidth - 16), height: 220 });
      }
    };
    window.addEventListener("resize", resize);
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
      window.removeEventListener("resize", resize);
      conn?.plot?.destroy();
      msgs?.plot?.destroy();
    };
  },
};
