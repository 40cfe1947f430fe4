// The schedule explorer of lesson 1 on the static site: two sliders (min and max signal rate)
// that recompute the cosine schedule in the browser and redraw it as SVG, no kernel needed.
// Same arithmetic as ddim_tutorial.schedule.diffusion_schedule:
//   angle(t) = acos(max_signal) + t * (acos(min_signal) - acos(max_signal))
//   signal_rate = cos(angle), noise_rate = sin(angle)
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const MARKED = [0, 0.25, 0.5, 0.75, 1];

  function schedule(t, minSignal, maxSignal) {
    const start = Math.acos(maxSignal), end = Math.acos(minSignal);
    const angle = start + t * (end - start);
    return { signal: Math.cos(angle), noise: Math.sin(angle) };
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attrs) {
    const node = el("text", Object.assign({ x, y, "font-size": 12 }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }

  function polyline(parent, points, color, width, extra) {
    return el("polyline", Object.assign({
      points: points.map(([x, y]) => `${x.toFixed(2)},${y.toFixed(2)}`).join(" "),
      fill: "none", stroke: color, "stroke-width": width }, extra || {}), parent);
  }

  function axes(parent, x0, y0, w, h, xlabel, ylabel, title) {
    el("rect", { x: x0, y: y0, width: w, height: h, fill: "none", stroke: "#888" }, parent);
    for (const v of [0, 0.5, 1]) {
      text(parent, x0 - 6, y0 + h - v * h / 1.08 + 4, v.toFixed(1), { "text-anchor": "end", "font-size": 10 });
    }
    text(parent, x0 + w / 2, y0 + h + 30, xlabel, { "text-anchor": "middle" });
    text(parent, x0 - 34, y0 + h / 2, ylabel, { "text-anchor": "middle",
      transform: `rotate(-90 ${x0 - 34} ${y0 + h / 2})` });
    text(parent, x0 + w / 2, y0 - 8, title, { "text-anchor": "middle", "font-weight": "bold" });
  }

  function draw(svg, minSignal, maxSignal) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    // Left: a quarter of the unit circle, (noise rate, signal rate).
    const cx = 60, cy = 40, side = 240, scale = side / 1.08;
    axes(svg, cx, cy, side, side, "noise rate", "signal rate", "a quarter of the unit circle");
    for (const v of [0, 0.5, 1]) {
      text(svg, cx + v * scale, cy + side + 14, v.toFixed(1), { "text-anchor": "middle", "font-size": 10 });
    }
    const toCircle = (n, s) => [cx + n * scale, cy + side - s * scale];
    const quarter = [];
    for (let i = 0; i <= 100; i++) {
      const a = (Math.PI / 2) * (i / 100);
      quarter.push(toCircle(Math.sin(a), Math.cos(a)));
    }
    polyline(svg, quarter, "#ccc", 1);
    const curve = [];
    for (let i = 0; i <= 200; i++) {
      const r = schedule(i / 200, minSignal, maxSignal);
      curve.push(toCircle(r.noise, r.signal));
    }
    polyline(svg, curve, "#8e44ad", 3, { class: "ddim-schedule-path" });
    for (const t of MARKED) {
      const r = schedule(t, minSignal, maxSignal);
      const [x, y] = toCircle(r.noise, r.signal);
      el("line", { x1: cx, y1: cy + side, x2: x, y2: y, stroke: "#8e44ad", "stroke-opacity": 0.25 }, svg);
      el("circle", { cx: x, cy: y, r: 4, fill: "#8e44ad" }, svg);
      text(svg, x + 6, y - 4, `t=${t}`, { "font-size": 10 });
    }

    // Right: the two rates against diffusion time.
    const rx = 380, ry = 40, rw = 360, rh = 240;
    axes(svg, rx, ry, rw, rh, "diffusion time t", "rate", "signal and noise rate over time");
    for (const v of [0, 0.5, 1]) {
      text(svg, rx + v * rw, ry + rh + 14, v.toFixed(1), { "text-anchor": "middle", "font-size": 10 });
    }
    const toRates = (t, v) => [rx + t * rw, ry + rh - v * (rh / 1.08)];
    const signal = [], noise = [];
    for (let i = 0; i <= 200; i++) {
      const t = i / 200, r = schedule(t, minSignal, maxSignal);
      signal.push(toRates(t, r.signal));
      noise.push(toRates(t, r.noise));
    }
    polyline(svg, signal, "#1f77b4", 2, { class: "ddim-schedule-signal" });
    polyline(svg, noise, "#ff7f0e", 2, { class: "ddim-schedule-noise" });
    el("line", { x1: rx + rw - 150, y1: ry + 16, x2: rx + rw - 130, y2: ry + 16, stroke: "#1f77b4", "stroke-width": 2 }, svg);
    text(svg, rx + rw - 125, ry + 20, "signal rate", {});
    el("line", { x1: rx + rw - 150, y1: ry + 34, x2: rx + rw - 130, y2: ry + 34, stroke: "#ff7f0e", "stroke-width": 2 }, svg);
    text(svg, rx + rw - 125, ry + 38, "noise rate", {});
  }

  function slider(container, label, min, max, value) {
    const row = document.createElement("label");
    row.className = "ddim-static-control";
    const name = document.createElement("span");
    name.textContent = label;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min, max, step: 0.01, value });
    input.setAttribute("aria-label", label);
    input.dataset.control = label;
    const shown = document.createElement("output");
    row.append(name, input, shown);
    container.appendChild(row);
    return { input, shown };
  }

  function mount(root) {
    const controls = document.createElement("div");
    controls.className = "ddim-static-controls";
    root.appendChild(controls);
    const low = slider(controls, "min signal", 0.01, 0.5, root.dataset.minSignal || 0.02);
    const high = slider(controls, "max signal", 0.5, 1.0, root.dataset.maxSignal || 0.95);
    const status = document.createElement("p");
    status.className = "ddim-static-status";
    root.appendChild(status);
    const svg = el("svg", { viewBox: "0 0 780 330", role: "img", class: "ddim-static-figure" });
    root.appendChild(svg);
    const update = () => {
      const minSignal = parseFloat(low.input.value), maxSignal = parseFloat(high.input.value);
      low.shown.textContent = minSignal.toFixed(2);
      high.shown.textContent = maxSignal.toFixed(2);
      if (!(minSignal < maxSignal)) {
        status.textContent = "min signal must be smaller than max signal.";
        return;
      }
      const noiseAtEnd = schedule(1, minSignal, maxSignal).noise;
      status.textContent = `t = 0: signal ${maxSignal.toFixed(2)}, noise ${schedule(0, minSignal, maxSignal).noise.toFixed(2)}; `
        + `t = 1: signal ${minSignal.toFixed(2)}, noise ${noiseAtEnd.toFixed(2)}`;
      draw(svg, minSignal, maxSignal);
    };
    low.input.addEventListener("input", update);
    high.input.addEventListener("input", update);
    update();
    root.dataset.ready = "true";
  }

  function mountAll() {
    document.querySelectorAll(".ddim-static-schedule:not([data-ready])").forEach(mount);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
