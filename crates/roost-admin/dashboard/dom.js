// Small DOM helpers: elements built with textContent (never innerHTML with
// data), tables, a pager and the status toast.

/** h("button", {type: "button", onclick}, "text", child...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A table with a caption; `columns`: [{label, value(row), num?}]. */
export function table(caption, columns, rows, empty = "Nothing to show.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : "" }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => {
        const v = c.value(row);
        return h("td", { class: c.num ? "num" : "" }, v);
      }))))));
}

/** Previous / next buttons for an API list's `meta`. */
export function pager(meta, go) {
  const page = meta?.page || 1;
  return h("div", { class: "pager" },
    h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => go(page - 1) }, "Previous page"),
    h("span", {}, `Page ${page}, ${meta?.count ?? 0} in all`),
    h("button", { type: "button", class: "secondary", disabled: !meta?.hasnext, onclick: () => go(page + 1) }, "Next page"));
}

let toastTimer = null;
/** A short message in the polite live region. */
export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ""; }, 5000);
}

/** A labelled input. */
export function field(label, attrs) {
  return h("label", {}, label, h("input", attrs));
}

export function errorText(e) {
  return e?.message || String(e);
}

export function fmtNumber(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "–";
}

export function fmtTime(t) {
  if (!t) return "–";
  const d = typeof t === "number" ? new Date(t) : new Date(String(t));
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}
