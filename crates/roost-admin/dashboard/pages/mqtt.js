// The built-in MQTT client: MQTT.js (vendored browser build) over the
// broker's WebSocket listener. Connect, subscribe, publish, and see what
// arrives. The ws address is suggested from GET /api/v1/listeners.

import { get } from "../api.js";
import { h, errorText } from "../dom.js";

/** Messages shown at most (the oldest go first). */
const KEEP = 200;

/** The first ws listener's URL, reached at the host this page came from
 * (a listener bound to 0.0.0.0 announces that address). */
function wsUrl(listeners) {
  const ws = (Array.isArray(listeners) ? listeners : listeners?.data || []).find((l) => l.kind === "ws");
  if (!ws) return "";
  const port = String(ws.address).split(":").pop();
  let path = "/mqtt";
  try {
    if (ws.url) path = new URL(ws.url).pathname || path;
  } catch { /* keep the default path */ }
  if (!path || path === "/") path = "/mqtt";
  return `ws://${location.hostname}:${port}${path}`;
}

export default {
  title: "MQTT client",
  render(root) {
    let client = null;
    const url = h("input", { id: "mqtt-url", name: "url", size: 36, required: true });
    const clientId = h("input", { id: "mqtt-client-id", name: "clientId", value: `roost-dashboard-${Math.random().toString(16).slice(2, 10)}` });
    const mqttUser = h("input", { id: "mqtt-username", name: "username", autocomplete: "off" });
    const mqttPassword = h("input", { id: "mqtt-password", name: "password", type: "password", autocomplete: "off" });
    const state = h("p", { id: "mqtt-state", role: "status" }, "Disconnected");
    const connectButton = h("button", { type: "submit" }, "Connect");
    const disconnectButton = h("button", { type: "button", class: "secondary", disabled: true }, "Disconnect");
    const subTopic = h("input", { id: "mqtt-sub-topic", name: "filter", value: "#", required: true });
    const subQos = qosSelect("mqtt-sub-qos");
    const pubTopic = h("input", { id: "mqtt-pub-topic", name: "topic", required: true });
    const pubPayload = h("textarea", { id: "mqtt-pub-payload", name: "payload", rows: 2 });
    const pubQos = qosSelect("mqtt-pub-qos");
    const pubRetain = h("input", { id: "mqtt-pub-retain", type: "checkbox", name: "retain" });
    const messages = h("ol", { class: "messages", "aria-label": "Messages received", "aria-live": "polite" });
    const onlineOnly = [];

    function qosSelect(id) {
      return h("select", { id }, [0, 1, 2].map((q) => h("option", { value: q }, `QoS ${q}`)));
    }

    function setConnected(on) {
      connectButton.disabled = on;
      disconnectButton.disabled = !on;
      for (const b of onlineOnly) b.disabled = !on;
    }

    get("/api/v1/listeners").then((l) => { if (!url.value) url.value = wsUrl(l); }).catch(() => {});

    const connectForm = h("form", { class: "inline", "aria-label": "Connect" },
      h("label", { for: "mqtt-url" }, "WebSocket URL", url),
      h("label", { for: "mqtt-client-id" }, "Client id", clientId),
      h("label", { for: "mqtt-username" }, "User name", mqttUser),
      h("label", { for: "mqtt-password" }, "Password", mqttPassword),
      connectButton, disconnectButton);
    connectForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      state.textContent = "Connecting…";
      try {
        const mqtt = await import("../vendor/mqtt.esm.js");
        const connect = mqtt.connect || mqtt.default?.connect;
        client = connect(url.value.trim(), {
          clientId: clientId.value.trim(),
          username: mqttUser.value || undefined,
          password: mqttPassword.value || undefined,
          protocolVersion: 5,
          reconnectPeriod: 0,
          connectTimeout: 10000,
        });
        client.on("connect", () => { state.textContent = `Connected as ${clientId.value.trim()}`; setConnected(true); });
        client.on("error", (err) => { state.textContent = `Error: ${errorText(err)}`; });
        client.on("close", () => { state.textContent = "Disconnected"; setConnected(false); });
        client.on("message", (topic, payload, packet) => {
          const text = new TextDecoder().decode(payload);
          messages.prepend(h("li", {}, h("code", {}, topic), " ", h("span", { class: "badge" }, `QoS ${packet.qos}${packet.retain ? ", retained" : ""}`), h("pre", {}, text)));
          while (messages.children.length > KEEP) messages.lastChild.remove();
        });
      } catch (err) {
        state.textContent = `Cannot connect: ${errorText(err)}`;
      }
    });
    disconnectButton.addEventListener("click", () => client?.end());

    const subButton = h("button", { type: "submit", disabled: true }, "Subscribe");
    const subForm = h("form", { class: "inline", "aria-label": "Subscribe" },
      h("label", { for: "mqtt-sub-topic" }, "Topic filter", subTopic),
      h("label", { for: "mqtt-sub-qos" }, "QoS", subQos), subButton);
    subForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const filter = subTopic.value.trim();
      client?.subscribe(filter, { qos: Number(subQos.value) }, (err, granted) => {
        const code = granted?.[0]?.qos;
        state.textContent = err || code >= 128 ? `Subscription to ${filter} refused` : `Subscribed to ${filter}`;
      });
    });

    const pubButton = h("button", { type: "submit", disabled: true }, "Publish");
    const pubForm = h("form", { class: "inline", "aria-label": "Publish" },
      h("label", { for: "mqtt-pub-topic" }, "Topic", pubTopic),
      h("label", { for: "mqtt-pub-payload" }, "Payload", pubPayload),
      h("label", { for: "mqtt-pub-qos" }, "QoS", pubQos),
      h("label", { for: "mqtt-pub-retain" }, "Retain", pubRetain), pubButton);
    pubForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const topic = pubTopic.value.trim();
      client?.publish(topic, pubPayload.value, { qos: Number(pubQos.value), retain: pubRetain.checked }, (err) => {
        state.textContent = err ? `Publish failed: ${errorText(err)}` : `Published to ${topic}`;
      });
    });
    onlineOnly.push(subButton, pubButton);

    root.append(h("h1", {}, "MQTT client"),
      h("p", { class: "muted" }, "Connects from this browser to the broker's WebSocket listener."),
      h("div", { class: "panel" }, h("h2", {}, "Connection"), connectForm, state),
      h("div", { class: "panel" }, h("h2", {}, "Subscribe"), subForm),
      h("div", { class: "panel" }, h("h2", {}, "Publish"), pubForm),
      h("div", { class: "panel" }, h("h2", {}, "Messages"), messages));
    return () => client?.end(true);
  },
};
