/* slimfreeze size report. Reads the JSON embedded in #report-data and renders it with DOM calls
   and textContent only: no innerHTML with data, no network. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var TOTAL = data.total_stored;
  var rows = data.rows.map(function (r, i) {
    return { id: i, name: r[0], kind: r[1], stored: r[2], raw: r[3], module: r[4], pkg: r[5], dist: r[6],
             guess: !!r[7], estimate: !!r[8], children: r[9] || [] };
  });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtSize(n) {
    var a = Math.abs(n), s = n < 0 ? "-" : "";
    if (a < 1024) return s + a + "B";
    if (a < 1048576) return s + (a / 1024).toFixed(1) + "KiB";
    return s + (a / 1048576).toFixed(1) + "MiB";
  }
  function fmtShare(n) { return TOTAL ? (100 * n / TOTAL).toFixed(1) + "%" : "-"; }
  function fmtBytes(n) { return n.toLocaleString("en-US") + " B"; }
  function distLabel(dist, guess) { return guess ? dist + "?" : dist; }
  // Fixed hues for the usual distributions (keep in sync with html.py PALETTE), a hash otherwise.
  var PALETTE = { "python-runtime": 212, "python-stdlib": 140, "paho-mqtt": 28, "app": 0, "slimfreeze": 275,
                  "pyinstaller": 50, "nuitka": 185, "libcrypto": 325, "libssl": 300, "libz": 95, "unknown": 230 };
  function hue(name) {
    if (Object.prototype.hasOwnProperty.call(PALETTE, name)) return PALETTE[name];
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return h % 360;
  }
  function color(dist, depth) {
    return "hsl(" + hue(dist) + ", 55%, " + (72 + 6 * Math.min(depth, 3)) + "%)";
  }
  // Guessed attributions are hatched, as in the index page.
  function fill(dist, depth, guess) {
    if (!guess) return color(dist, depth);
    var h = hue(dist), l = 72 + 6 * Math.min(depth, 3);
    return "repeating-linear-gradient(45deg, hsl(" + h + ",55%," + l + "%) 0 5px, hsl(" + h + ",55%," +
      Math.min(l + 10, 96) + "%) 5px 10px)";
  }

  /* ---- header ---------------------------------------------------------------------------- */
  document.getElementById("title").textContent = "Size report: " + data.artifact;
  var summary = document.getElementById("summary");
  function fact(label, value, cls) {
    var span = el("span", null, label + " ");
    var b = el("b", cls || null, value);
    span.appendChild(b);
    summary.appendChild(span);
  }
  fact("on disk", fmtBytes(TOTAL) + " (" + fmtSize(TOTAL) + ")");
  fact("uncompressed", fmtBytes(data.total_raw));
  fact("format", data.format);
  fact("files", String(data.files));
  fact("rows", String(data.row_count));
  var manifest = data.manifest;
  if (manifest && manifest.image && typeof manifest.image.size === "number") {
    fact("flash image", fmtBytes(manifest.image.size));
  }
  if (manifest && manifest.smoke && typeof manifest.smoke.passed === "boolean") {
    fact("smoke", manifest.smoke.passed ? "passed" : "FAILED", manifest.smoke.passed ? "smoke-pass" : "smoke-fail");
  }
  var notes = document.getElementById("notes");
  data.notes.forEach(function (n) { notes.appendChild(el("li", null, n)); });

  /* ---- treemap: distribution -> package -> module ------------------------------------------ */
  function buildTree() {
    var root = { name: data.artifact, value: 0, children: [], index: {}, dist: "", depth: 0, parent: null };
    function child(node, name, dist, guess) {
      var c = node.index[name];
      if (!c) {
        c = { name: name, value: 0, children: [], index: {}, dist: dist, guess: guess, depth: node.depth + 1,
              parent: node };
        node.index[name] = c;
        node.children.push(c);
      }
      return c;
    }
    rows.forEach(function (r) {
      if (r.stored <= 0) return;
      var d = child(root, distLabel(r.dist, r.guess), r.dist, r.guess);
      var p = child(d, r.pkg, r.dist, r.guess);
      var m = child(p, r.module, r.dist, r.guess);
      root.value += r.stored; d.value += r.stored; p.value += r.stored; m.value += r.stored;
    });
    (function sortAll(n) {
      n.children.sort(function (a, b) { return b.value - a.value || (a.name < b.name ? -1 : 1); });
      n.children.forEach(sortAll);
    })(root);
    return root;
  }

  /* Squarified treemap (Bruls, Huizing, van Wijk): rows of rectangles whose aspect ratios stay
     close to 1. Items must be sorted by value, largest first. */
  function squarify(items, x, y, w, h) {
    var out = [];
    var total = 0;
    items.forEach(function (it) { total += it.value; });
    if (total <= 0 || w <= 0 || h <= 0) return out;
    var scale = (w * h) / total;
    var rest = items.slice();
    while (rest.length) {
      var short = Math.min(w, h);
      var row = [], rowSum = 0, best = Infinity;
      while (rest.length) {
        var v = rest[0].value * scale;
        var s = rowSum + v;
        var maxV = Math.max(v, row.length ? row[0].value * scale : v);
        var minV = row.length ? Math.min(v, row[row.length - 1].value * scale) : v;
        var worst = Math.max(short * short * maxV / (s * s), (s * s) / (short * short * minV));
        if (row.length && worst > best) break;
        best = worst; row.push(rest.shift()); rowSum = s;
      }
      var thick = rowSum / short;
      var pos = 0;
      row.forEach(function (it) {
        var len = it.value * scale / thick;
        if (w >= h) out.push({ item: it, x: x, y: y + pos, w: thick, h: len });
        else out.push({ item: it, x: x + pos, y: y, w: len, h: thick });
        pos += len;
      });
      if (w >= h) { x += thick; w -= thick; } else { y += thick; h -= thick; }
    }
    return out;
  }

  var tree = buildTree();
  var current = tree;
  var box = document.getElementById("treemap");
  var crumbs = document.getElementById("crumbs");

  function renderCrumbs() {
    while (crumbs.firstChild) crumbs.removeChild(crumbs.firstChild);
    var path = [];
    for (var n = current; n; n = n.parent) path.unshift(n);
    path.forEach(function (node, i) {
      if (i) crumbs.appendChild(el("span", "sep", "\u203A"));
      var b = el("button", null, node.name + " (" + fmtSize(node.value) + ")");
      b.disabled = node === current;
      b.addEventListener("click", function () { current = node; renderTreemap(); });
      crumbs.appendChild(b);
    });
  }

  function renderTreemap() {
    while (box.firstChild) box.removeChild(box.firstChild);
    renderCrumbs();
    var W = box.clientWidth, H = box.clientHeight;
    var items = current.children.filter(function (c) { return c.value > 0; });
    squarify(items, 0, 0, W, H).forEach(function (r) {
      var node = r.item;
      var div = el("div", "tm-node" + (node.children.length ? "" : " leaf"));
      div.style.left = r.x + "px"; div.style.top = r.y + "px";
      div.style.width = Math.max(r.w, 0) + "px"; div.style.height = Math.max(r.h, 0) + "px";
      div.style.background = fill(node.dist, node.depth, node.guess);
      div.title = node.name + "\n" + fmtBytes(node.value) + " (" + fmtShare(node.value) + " of the file)";
      div.setAttribute("data-name", node.name);
      if (r.w > 40 && r.h > 16) {
        var label = el("div", "tm-label", node.name + " ");
        label.appendChild(el("small", null, fmtSize(node.value)));
        div.appendChild(label);
      }
      // One more level inside, so the structure shows before zooming.
      if (node.children.length && r.w > 30 && r.h > 36) {
        squarify(node.children.filter(function (c) { return c.value > 0; }), 2, 18, r.w - 6, r.h - 22)
          .forEach(function (q) {
            if (q.w < 3 || q.h < 3) return;
            var inner = el("div", "tm-inner");
            inner.style.left = q.x + "px"; inner.style.top = q.y + "px";
            inner.style.width = q.w + "px"; inner.style.height = q.h + "px";
            inner.style.background = fill(q.item.dist, q.item.depth, q.item.guess);
            div.appendChild(inner);
          });
      }
      div.addEventListener("click", function () {
        if (node.children.length) { current = node; renderTreemap(); }
        else { search.value = node.name; applyFilter(); }
      });
      box.appendChild(div);
    });
  }

  /* ---- table ------------------------------------------------------------------------------- */
  var MAX_SHOWN = 3000;
  var columns = [
    { key: "stored", label: "File %", num: true, get: function (r) { return fmtShare(r.stored); } },
    { key: "stored", label: "Stored", num: true, get: function (r) { return (r.estimate ? "~" : "") + fmtSize(r.stored); } },
    { key: "raw", label: "Raw", num: true, get: function (r) { return fmtSize(r.raw); } },
    { key: "dist", label: "Distribution", get: function (r) { return distLabel(r.dist, r.guess); } },
    { key: "module", label: "Module", get: function (r) { return r.module; } },
    { key: "name", label: "Name", get: function (r) { return r.name; } },
    { key: "kind", label: "Kind", get: function (r) { return r.kind; } }
  ];
  var sortCol = 1, sortDesc = true;
  var search = document.getElementById("search");
  var tbody = document.getElementById("rows-body");
  var count = document.getElementById("count");
  var thead = document.getElementById("rows-head");

  columns.forEach(function (c, i) {
    var th = el("th", c.num ? "num" : null, c.label);
    th.setAttribute("data-key", c.key);
    th.setAttribute("tabindex", "0");
    th.addEventListener("click", function () {
      if (sortCol === i) sortDesc = !sortDesc;
      else { sortCol = i; sortDesc = !!c.num; }
      renderTable();
    });
    thead.appendChild(th);
  });

  function matches(r, q) {
    if (!q) return true;
    return (r.name + "\n" + r.module + "\n" + r.pkg + "\n" + distLabel(r.dist, r.guess) + "\n" + r.kind)
      .toLowerCase().indexOf(q) !== -1;
  }
  function compare(a, b) {
    var key = columns[sortCol].key;
    var x = a[key], y = b[key], c;
    if (typeof x === "number") c = x - y;
    else c = x < y ? -1 : x > y ? 1 : 0;
    if (sortDesc) c = -c;
    return c || (b.stored - a.stored) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }
  function renderTable() {
    Array.prototype.forEach.call(thead.children, function (th, i) {
      th.setAttribute("aria-sort", i === sortCol ? (sortDesc ? "descending" : "ascending") : "none");
    });
    var q = search.value.trim().toLowerCase();
    var shown = rows.filter(function (r) { return matches(r, q); }).sort(compare);
    var sum = 0;
    shown.forEach(function (r) { sum += r.stored; });
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    var frag = document.createDocumentFragment();
    shown.slice(0, MAX_SHOWN).forEach(function (r) {
      var tr = el("tr");
      tr.setAttribute("data-row", String(r.id));
      columns.forEach(function (c) {
        var td = el("td", c.num ? "num" : c.key === "name" ? "name" : c.key === "dist" ? "dist" : null);
        if (c.key === "name" && r.children.length) {
          var t = el("button", "toggle", "\u25B8");
          t.title = "ELF sections";
          t.addEventListener("click", function (ev) { ev.stopPropagation(); toggleSections(tr, r, t); });
          td.appendChild(t);
          td.appendChild(el("span", "rowname", c.get(r)));
        } else if (c.key === "name") {
          td.appendChild(el("span", "rowname", c.get(r)));
        } else if (c.key === "dist") {
          var sw = el("span", "swatch");
          sw.style.background = fill(r.dist, 1, r.guess);
          td.appendChild(sw);
          td.appendChild(document.createTextNode(c.get(r)));
        } else {
          td.textContent = c.get(r);
        }
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    tbody.appendChild(frag);
    count.textContent = "Showing " + Math.min(shown.length, MAX_SHOWN) + " of " + shown.length + " matching rows (" +
      rows.length + " in all); matching rows hold " + fmtBytes(sum) + " = " + fmtShare(sum) + " of the file.";
  }
  function toggleSections(tr, r, button) {
    var open = tr.getAttribute("data-open") === "1";
    if (open) {
      while (tr.nextSibling && tr.nextSibling.className === "section-row") tbody.removeChild(tr.nextSibling);
      tr.setAttribute("data-open", "0");
      button.textContent = "\u25B8";
      return;
    }
    var after = tr;
    var labels = data.section_labels || {};
    function sub(share, stored, raw, name, kind) {
      var s = el("tr", "section-row");
      s.appendChild(el("td", "num", share));
      s.appendChild(el("td", "num", stored));
      s.appendChild(el("td", "num", raw));
      s.appendChild(el("td", null, ""));
      s.appendChild(el("td", null, ""));
      s.appendChild(el("td", "name", name));
      s.appendChild(el("td", null, kind));
      tbody.insertBefore(s, after.nextSibling);
      after = s;
    }
    var strip = 0;
    r.children.forEach(function (c) {
      if (c[0] === "symbols" || c[0] === "debug") strip += c[2];
      sub(fmtShare(c[1]), (c[3] ? "~" : "") + fmtSize(c[1]), fmtSize(c[2]), "  " + (labels[c[0]] || c[0]), "section");
    });
    if (strip) sub("", "", fmtSize(strip), "  strip would save " + fmtSize(strip) + " uncompressed", "strip");
    var nat = (data.native || {})[r.name];
    if (nat) {
      nat.units.forEach(function (u) { sub("", "", fmtSize(u[1]), "  unit " + u[0], "unit"); });
      nat.symbols.forEach(function (p) { sub("", "", fmtSize(p[2]), "    " + p[0] + "  (" + p[1] + ")", "function"); });
      sub("", "", "", "  symbols: " + nat.source + "; units from " + nat.units_from, "note");
    }
    tr.setAttribute("data-open", "1");
    button.textContent = "\u25BE";
  }
  function applyFilter() { renderTable(); }
  search.addEventListener("input", applyFilter);

  /* ---- links, profile, manifest ------------------------------------------------------------ */
  var links = document.getElementById("links");
  if (data.links.length) {
    data.links.forEach(function (l) { links.appendChild(el("li", null, l.path + " \u2192 " + l.target + " (0 bytes)")); });
  } else {
    links.appendChild(el("li", "muted", "none"));
  }
  var profileBody = document.getElementById("profile-body");
  var profile = manifest && manifest.resolved_profile;
  if (profile && typeof profile === "object") {
    Object.keys(profile).sort().forEach(function (k) {
      var tr = el("tr");
      tr.appendChild(el("td", null, k));
      tr.appendChild(el("td", "name", JSON.stringify(profile[k])));
      profileBody.appendChild(tr);
    });
  } else {
    var tr = el("tr");
    tr.appendChild(el("td", "muted", "no manifest.json next to the artifact: profile unknown"));
    profileBody.appendChild(tr);
  }
  document.getElementById("manifest").textContent =
    manifest ? JSON.stringify(manifest, null, 2) : "(no manifest.json)";

  renderTreemap();
  renderTable();
  window.addEventListener("resize", renderTreemap);
  document.body.setAttribute("data-ready", "1");
})();
