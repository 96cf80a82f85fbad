// The playground page: the level on a canvas, the agent playing episodes continuously with
// onnxruntime-web, edits that make a new level, and the live plot of per-episode return.
// Everything the page does goes through one queue (steps, edits), so an edit always lands
// between two steps. window.playground exposes the state and a log of every step's inputs
// and outputs (tests/test_playground_browser.py reads it).
import { CONTROLS, GridNav, layoutOf, parseLayout } from "./gridnav.mjs";
import { Uniforms, loadAgent } from "./agent.mjs";
import { ReturnPlot } from "./plot.mjs";

const $ = (id) => document.getElementById(id);
const api = (window.playground = { ready: false, error: null, episodesDone: 0, refused: 0,
  log: { levels: [], episodes: [] }, plotted: [] });
const page = { playing: false, delay: 100, queue: Promise.resolve(), episode: null };

function enqueue(job) {
  page.queue = page.queue.then(job).catch((error) => {
    api.error = String(error?.stack || error);
    page.playing = false;
    $("status").textContent = `error: ${error?.message || error}`;
  });
  return page.queue;
}

/** A new level (picked or edited): a fresh game, the agent reset, a new plot series. */
function setLevel(layout, rules, name) {
  if (page.episode && page.episode.steps.length) {
    page.episode.cut = true; // an edit mid-episode ends it unfinished (not plotted or adapted on)
    api.log.episodes.push(page.episode);
  }
  page.episode = null;
  page.level = parseLayout(layout);
  page.layout = layout;
  page.rules = { ...rules };
  page.game = new GridNav(page.level, page.rules);
  page.agent.newLevel();
  page.segment = api.log.levels.length;
  api.log.levels.push({ segment: page.segment, name, layout, rules: { ...page.rules } });
  page.plot.newSeries(page.segment ? `${page.segment}: ${name}` : name);
  $("controls").value = page.rules.controls;
  $("slip").value = String(page.rules.slip);
  $("slip-value").textContent = String(page.rules.slip);
  draw();
}

function startEpisode() {
  const seed = api.config.seed + api.episodesDone + api.log.episodes.filter((e) => e.cut).length;
  const observation = page.game.reset(seed);
  page.agent.newEpisode();
  page.episode = { segment: page.segment, layout: page.layout, rules: { ...page.rules }, seed,
    steps: [], observation, cut: false };
}

async function stepOnce() {
  if (!page.episode) startEpisode();
  const episode = page.episode;
  const observation = Array.from(episode.observation);
  const { action, log } = await page.agent.act(episode.observation);
  const out = page.game.step(action);
  const extra = await page.agent.outcome(out.reward, out.observation);
  episode.steps.push({ observation, action, reward: out.reward, terminated: out.terminated,
    truncated: out.truncated, next_observation: Array.from(out.observation), ...log, ...extra });
  episode.observation = out.observation;
  if (out.terminated || out.truncated) await finishEpisode(episode);
  draw();
}

async function finishEpisode(episode) {
  page.episode = null;
  episode.return = episode.steps.reduce((sum, s) => sum + s.reward, 0);
  episode.adapter = await page.agent.endEpisode(episode);
  delete episode.observation;
  api.log.episodes.push(episode);
  api.episodesDone += 1;
  api.plotted.push({ segment: episode.segment, episode: api.episodesDone - 1, value: episode.return });
  page.plot.add(episode.return);
  const moved = page.agent.family === "adapter" ? `, weights moved ${page.agent.distance().toFixed(3)} `
    + `from weights.bin's after ${page.agent.adaptations} adaptation(s)` : "";
  $("adaptation").textContent = `last return ${episode.return.toFixed(3)}${moved}`;
}

function draw() {
  const canvas = $("grid"), g = canvas.getContext("2d");
  const { size, walls, start, goal } = page.level;
  const cell = Math.floor(canvas.width / size);
  api.cellSize = cell;
  g.clearRect(0, 0, canvas.width, canvas.height);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      g.fillStyle = walls[y][x] ? "#3b3b46" : "#f3f1ea";
      g.fillRect(x * cell, y * cell, cell - 1, cell - 1);
    }
  }
  g.fillStyle = "#4caf50";
  g.fillRect(goal[0] * cell + 4, goal[1] * cell + 4, cell - 9, cell - 9);
  g.strokeStyle = "#1f77b4";
  g.lineWidth = 3;
  g.strokeRect(start[0] * cell + 5, start[1] * cell + 5, cell - 11, cell - 11);
  g.fillStyle = "#e8a33d";
  g.beginPath();
  g.arc((page.game.x + 0.5) * cell, (page.game.y + 0.5) * cell, cell * 0.32, 0, 2 * Math.PI);
  g.fill();
  const steps = page.episode ? page.episode.steps : [];
  const sum = steps.reduce((a, s) => a + s.reward, 0);
  $("episode").textContent = `episode ${api.episodesDone + 1}, step ${steps.length}, return so far `
    + `${sum.toFixed(3)}; controls ${page.rules.controls}, slip ${page.rules.slip}`;
}

/** A click on cell (x, y): the tool's edit, refused with a line if the level would break. */
function edit(x, y, tool) {
  const rows = page.layout.split("/").map((row) => [...row]);
  const here = rows[y][x];
  if (tool === "wall") {
    if (here === "A" || here === "G") return refuse("the start and the goal cannot be walls");
    rows[y][x] = here === "#" ? "." : "#";
  } else {
    const mark = tool === "goal" ? "G" : "A";
    if (here !== ".") return refuse(`the ${tool} goes on a floor cell`);
    for (const row of rows) row.forEach((c, i) => { if (c === mark) row[i] = "."; });
    rows[y][x] = mark;
  }
  const layout = rows.map((row) => row.join("")).join("/");
  try {
    parseLayout(layout);
  } catch (error) {
    return refuse(`not a level: ${error.message}`);
  }
  $("status").textContent = "";
  setLevel(layout, page.rules, "edited");
}

function refuse(message) {
  api.refused += 1;
  $("status").textContent = message;
}

function setPlaying(on) {
  page.playing = on;
  $("play").textContent = on ? "Pause" : "Play";
  if (on) loop();
}

async function loop() {
  while (page.playing) {
    await enqueue(stepOnce);
    await new Promise((resolve) => setTimeout(resolve, page.delay));
  }
}

function wire() {
  $("play").addEventListener("click", () => setPlaying(!page.playing));
  $("step").addEventListener("click", () => { if (!page.playing) enqueue(stepOnce); });
  $("speed").addEventListener("change", (e) => { page.delay = Number(e.target.value); });
  $("level").addEventListener("change", (e) => {
    const level = api.config.levels[Number(e.target.value)];
    enqueue(() => setLevel(level.layout, level.rules, level.name));
  });
  $("controls").addEventListener("change", (e) => enqueue(() =>
    setLevel(page.layout, { ...page.rules, controls: e.target.value }, `controls ${e.target.value}`)));
  $("slip").addEventListener("input", (e) => { $("slip-value").textContent = e.target.value; });
  $("slip").addEventListener("change", (e) => enqueue(() =>
    setLevel(page.layout, { ...page.rules, slip: Number(e.target.value) }, `slip ${e.target.value}`)));
  $("grid").addEventListener("click", (e) => {
    const box = $("grid").getBoundingClientRect();
    const x = Math.floor((e.clientX - box.left) / api.cellSize);
    const y = Math.floor((e.clientY - box.top) / api.cellSize);
    if (x < 0 || y < 0 || x >= page.level.size || y >= page.level.size) return;
    enqueue(() => edit(x, y, e.shiftKey ? "goal" : $("tool").value));
  });
}

/** Where on the page the centre of cell (x, y) is (for a test's real click). */
api.cellCenter = (x, y) => {
  const box = $("grid").getBoundingClientRect();
  return { x: box.left + (x + 0.5) * api.cellSize, y: box.top + (y + 0.5) * api.cellSize };
};
api.idle = () => page.queue.then(() => true);
api.layout = () => page.layout;
api.playing = () => page.playing;

async function main() {
  const config = (api.config = await (await fetch("config.json")).json());
  const ort = await import(new URL(config.ort.module, location.href).href);
  ort.env.wasm.numThreads = 1; // no cross-origin isolation needed on a plain static server
  const rng = new Uniforms(config.seed);
  page.agent = await loadAgent(ort, config.policy_folder, config.manifest, config.family, rng);
  const { title, carries } = page.agent.describe();
  api.family = page.agent.family;
  const source = String(config.manifest.source?.path ?? "a run").split("/").pop();
  $("family").textContent = `${title}: ${config.manifest.game} policy exported from ${source}`;
  $("carries").textContent = carries;
  $("controls").replaceChildren(...Object.keys(CONTROLS).map((name) => new Option(name, name)));
  $("level").replaceChildren(...config.levels.map((level, i) => new Option(
    `${level.name} (${level.layout.split("/").length}x, ${level.rules.controls}, slip ${level.rules.slip.toFixed(2)})`, String(i))));
  page.plot = new ReturnPlot($("plot"));
  const first = config.levels[0];
  setLevel(layoutOf(parseLayout(first.layout)), first.rules, first.name);
  wire();
  api.ready = true;
}

main().catch((error) => {
  api.error = String(error?.stack || error);
  $("status").textContent = `cannot start: ${error?.message || error}`;
});
