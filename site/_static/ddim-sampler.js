// The sampler explorer of lesson 6 on the static site: a sampler choice and sliders for steps and
// seed that swap frames drawn at build time by site/build.py from the bundled model. The frames'
// table comes from the element's data-frames attribute; their files lie beside this script.
(function () {
  "use strict";
  const HERE = new URL(".", document.currentScript.src);

  function mount(root) {
    const frames = JSON.parse(root.dataset.frames);
    const state = Object.assign({}, frames.default);
    const controls = document.createElement("div");
    controls.className = "ddim-static-controls";
    root.appendChild(controls);

    const samplerRow = document.createElement("div");
    samplerRow.className = "ddim-static-control";
    samplerRow.setAttribute("role", "radiogroup");
    const samplerLabel = document.createElement("span");
    samplerLabel.textContent = "sampler";
    samplerRow.appendChild(samplerLabel);
    for (const [value, label] of Object.entries(frames.samplers)) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.sampler = value;
      button.addEventListener("click", () => { state.sampler = value; update(); });
      samplerRow.appendChild(button);
    }
    controls.appendChild(samplerRow);

    const slider = (label, values, key) => {
      const row = document.createElement("label");
      row.className = "ddim-static-control";
      const name = document.createElement("span");
      name.textContent = label;
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: 0, max: values.length - 1, step: 1,
                             value: Math.max(0, values.indexOf(state[key])) });
      input.setAttribute("aria-label", label);
      input.dataset.control = label;
      const shown = document.createElement("output");
      input.addEventListener("input", () => { state[key] = values[parseInt(input.value, 10)]; update(); });
      row.append(name, input, shown);
      controls.appendChild(row);
      return shown;
    };
    const stepsShown = slider("steps", frames.steps, "steps");
    const seedShown = slider("seed", frames.seeds, "seed");

    const img = document.createElement("img");
    img.className = "ddim-static-figure";
    const caption = document.createElement("p");
    caption.className = "ddim-static-status";
    root.append(img, caption);

    function update() {
      const key = `${state.sampler}/${state.steps}/${state.seed}`;
      const file = frames.files[key];
      stepsShown.textContent = state.steps;
      seedShown.textContent = state.seed;
      samplerRow.querySelectorAll("button").forEach((button) => {
        button.setAttribute("aria-pressed", String(button.dataset.sampler === state.sampler));
      });
      if (!file) {
        caption.textContent = `no frame was drawn for ${key}`;
        return;
      }
      img.src = new URL(file, HERE).href;
      const evaluations = state.sampler === "ddim" ? state.steps : 2 * state.steps - 1;
      img.alt = `${frames.model}: ${frames.samplers[state.sampler]}, ${state.steps} steps, seed ${state.seed}`;
      caption.textContent = `${frames.samplers[state.sampler]}, ${state.steps} steps `
        + `(${evaluations} network evaluation${evaluations > 1 ? "s" : ""}), seed ${state.seed}`;
    }
    update();
    root.dataset.ready = "true";
  }

  function mountAll() {
    document.querySelectorAll(".ddim-static-sampler:not([data-ready])").forEach(mount);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
