// The dashboard's shell: login, the section router (#/name), the menu for
// narrow windows, and focus moved to each new page's heading.

import * as api from "./api.js";
import { h, errorText } from "./dom.js";
import overview from "./pages/overview.js";
import clients from "./pages/clients.js";
import subscriptions from "./pages/subscriptions.js";
import retained from "./pages/retained.js";
import banned from "./pages/banned.js";
import listeners from "./pages/listeners.js";
import mqttClient from "./pages/mqtt.js";

const pages = { overview, clients, subscriptions, retained, banned, listeners, mqtt: mqttClient };
const view = document.getElementById("view");
const nav = document.getElementById("nav");
const menu = document.getElementById("menu-toggle");
const logoutButton = document.getElementById("logout");
const who = document.getElementById("who");
/** What the page shown now must stop (timers, connections) when left. */
let leave = null;

function showLogin(message) {
  stopPage();
  nav.hidden = true;
  menu.hidden = true;
  logoutButton.hidden = true;
  who.textContent = "";
  document.title = "Log in · Roost dashboard";
  const error = h("p", { id: "login-error", class: "error", role: "alert" }, message || "");
  const user = h("input", { id: "login-user", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", { class: "stack", "aria-describedby": "login-error" },
    h("label", { for: "login-user" }, "User name", user),
    h("label", { for: "login-password" }, "Password", password),
    submit, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      await api.login(user.value, password.value);
      if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
      route();
    } catch (e) {
      error.textContent = e.status === 401 ? "Login failed: wrong user name or password."
        : e.status === 429 ? "Too many failed logins: wait a minute and try again."
        : `Login failed: ${errorText(e)}`;
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  view.replaceChildren(h("section", { class: "login panel" }, h("h1", {}, "Log in to Roost"), form));
  user.focus();
}

function stopPage() {
  if (leave) {
    try { leave(); } catch { /* a page's cleanup must not block the next */ }
    leave = null;
  }
}

function route() {
  if (!api.token()) {
    showLogin();
    return;
  }
  const name = (location.hash.replace(/^#\/?/, "").split("?")[0]) || "overview";
  const page = pages[name] || pages.overview;
  stopPage();
  nav.hidden = false;
  menu.hidden = false;
  logoutButton.hidden = false;
  who.textContent = `Signed in as ${api.username()}`;
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (window.matchMedia("(max-width: 640px)").matches) {
    nav.classList.add("folded");
    menu.setAttribute("aria-expanded", "false");
  }
  const section = h("section", { "aria-labelledby": "page-title" });
  view.replaceChildren(section);
  document.title = `${page.title} · Roost dashboard`;
  leave = page.render(section) || null;
  const heading = section.querySelector("h1");
  if (heading) {
    heading.id = "page-title";
    heading.tabIndex = -1;
    heading.focus();
  }
}

// The link of the page already shown opens it afresh (no hashchange fires).
nav.addEventListener("click", (event) => {
  const link = event.target.closest("a");
  if (link && link.getAttribute("href") === location.hash) {
    event.preventDefault();
    route();
  }
});
menu.addEventListener("click", () => {
  const folded = nav.classList.toggle("folded");
  menu.setAttribute("aria-expanded", String(!folded));
});
logoutButton.addEventListener("click", () => {
  api.logout();
  location.hash = "#/login";
  showLogin("You are logged out.");
});
window.addEventListener("roost:logged-out", () => showLogin("Your session ended: log in again."));
window.addEventListener("hashchange", route);
route();
