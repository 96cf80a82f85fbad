// The exported policy in onnxruntime-web, one class per family, each playing a level the way
// `gameadapt play` does (engine/ship/play.py, engine/ship/onnxpolicy.py):
//   AdapterAgent   - gradient family with adapter.onnx: actions sampled from the logits of
//                    policy_weights.onnx under the current weights; after every episode one
//                    adapter.onnx step on it (reward-to-go advantages); `play --adapt-online`.
//   PolicyAgent    - gradient family without an adapter: policy.onnx's action (its noise).
//   RecurrentAgent - rl2: GRU state, previous action and reward carried across episodes.
//   ContextAgent   - context: the posterior's two sums carried, encoder.onnx after every
//                    step, z by the manifest's context.z_update and latent_mode.
// newLevel() resets what an agent carries (weights.bin's weights, zero state, the prior);
// every act() returns the action and what went in and came out, for the page's log.
import { streamKey, uniform } from "./gridnav.mjs";

const NOISE_STREAM = 1; // the page's random numbers: uniform(stream_key(seed, 1), counter)

/** Uniform numbers from the counter-based hash of engine/hashrandom.py. */
export class Uniforms {
  constructor(seed, stream = NOISE_STREAM) {
    this.key = streamKey(seed, stream);
    this.count = 0;
  }
  next() {
    return uniform(this.key, this.count++);
  }
  /** A float32 standard normal (Box-Muller). */
  normal() {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return Math.fround(Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
  }
}

/** onnxpolicy.reward_to_go_advantages for one episode: float32, standardised. */
export function rewardToGoAdvantages(rewards, gamma) {
  const returns = new Float64Array(rewards.length);
  let running = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    running = rewards[t] + gamma * running;
    returns[t] = running;
  }
  if (!returns.length) return new Float32Array(0);
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const centred = returns.map((v) => v - mean);
  const std = Math.sqrt(centred.reduce((a, b) => a + b * b, 0) / centred.length);
  return Float32Array.from(centred, (v) => (std > 1e-8 ? v / std : v));
}

/** onnxpolicy.OnnxPolicy.sample for a discrete policy: the index the uniform u picks. */
export function sampleIndex(logits, u) {
  const top = Math.max(...logits);
  const probs = logits.map((v) => Math.exp(v - top));
  const total = probs.reduce((a, b) => a + b, 0);
  let cdf = 0, index = 0;
  for (const p of probs) {
    cdf += p / total;
    if (u > cdf) index++;
  }
  return Math.min(index, logits.length - 1);
}

const list = (values) => Array.from(values, Number);

class Base {
  constructor(ort, sessions, manifest, rng) {
    this.ort = ort;
    this.sessions = sessions;
    this.manifest = manifest;
    this.rng = rng;
    this.obsDim = manifest.observation_space.shape.reduce((a, b) => a * b, 1);
    const inputs = sessions.policy ? sessions.policy.inputNames : [];
    this.noiseSize = inputs.includes("noise") ? manifest.noise.shape[1] : 0;
  }
  f32(data, dims) {
    return new this.ort.Tensor("float32", Float32Array.from(data), dims);
  }
  i64(data, dims) {
    return new this.ort.Tensor("int64", BigInt64Array.from(data, (v) => BigInt(v)), dims);
  }
  noiseFeeds(log) {
    if (!this.noiseSize) return {};
    const noise = Float32Array.from({ length: this.noiseSize }, () => this.rng.next());
    log.noise = list(noise);
    return { noise: this.f32(noise, [1, this.noiseSize]) };
  }
  newLevel() {}
  newEpisode() {}
  async outcome() { return {}; }
  async endEpisode() { return null; }
}

class PolicyAgent extends Base {
  family = "policy";
  describe() {
    const mode = this.noiseSize ? "sampled with policy.onnx's noise input" : "greedy";
    return { title: "gradient family, no adapter", carries: `plays policy.onnx (${mode}) and `
      + "does not adapt: export with --with-adapter to watch it adapt after every episode" };
  }
  async act(observation) {
    const log = {};
    const feeds = { observation: this.f32(observation, [1, this.obsDim]), ...this.noiseFeeds(log) };
    const out = await this.sessions.policy.run(feeds);
    log.logits = list(out.logits.data);
    return { action: Number(out.action.data[0]), log };
  }
}

class AdapterAgent extends Base {
  family = "adapter";
  constructor(ort, sessions, manifest, rng, weights) {
    super(ort, sessions, manifest, rng);
    this.base = weights; // weights.bin's, by input name
    this.names = manifest.weights.map((spec) => spec.input_name);
    this.shapes = Object.fromEntries(manifest.weights.map((s) => [s.input_name, s.shape]));
    this.gamma = Number(manifest.adapter.gamma ?? 0.99);
    this.innerLr = Number(manifest.adapter.inner_lr);
    this.newLevel();
  }
  describe() {
    return { title: "gradient family (MAML-style) with adapter.onnx",
      carries: `adapting with adapter.onnx after every episode: one gradient step (inner_lr `
        + `${this.innerLr}, reward-to-go advantages, gamma ${this.gamma}); actions sampled `
        + "from policy_weights.onnx under the adapted weights" };
  }
  newLevel() {
    this.weights = Object.fromEntries(this.names.map((n) => [n, Float32Array.from(this.base[n])]));
    this.adaptations = 0;
  }
  weightFeeds(weights) {
    return Object.fromEntries(this.names.map((n) => [n, this.f32(weights[n], this.shapes[n])]));
  }
  /** How far the weights moved from weights.bin's (L2 norm). */
  distance() {
    let sum = 0;
    for (const n of this.names) this.weights[n].forEach((v, i) => { sum += (v - this.base[n][i]) ** 2; });
    return Math.sqrt(sum);
  }
  async act(observation) {
    const feeds = { observation: this.f32(observation, [1, this.obsDim]), ...this.weightFeeds(this.weights) };
    const out = await this.sessions.weights.run(feeds);
    const logits = list(out.logits.data);
    const u = this.rng.next();
    return { action: sampleIndex(logits, u), log: { logits, uniform: u } };
  }
  async endEpisode(episode) {
    const n = episode.steps.length;
    const advantages = rewardToGoAdvantages(episode.steps.map((s) => s.reward), this.gamma);
    const feeds = { ...this.weightFeeds(this.weights),
      observations: this.f32(episode.steps.flatMap((s) => s.observation), [n, this.obsDim]),
      actions: this.i64(episode.steps.map((s) => s.action), [n]),
      advantages: this.f32(advantages, [n]), inner_lr: this.f32([this.innerLr], []) };
    const out = await this.sessions.adapter.run(feeds);
    const before = this.weights;
    this.weights = Object.fromEntries(this.names.map((name) => [name, Float32Array.from(out[`new_${name}`].data)]));
    this.adaptations++;
    const asLists = (w) => Object.fromEntries(this.names.map((name) => [name, list(w[name])]));
    return { advantages: list(advantages), inner_lr: this.innerLr, weights_before: asLists(before),
      weights_after: asLists(this.weights) };
  }
}

class RecurrentAgent extends Base {
  family = "recurrent";
  constructor(ort, sessions, manifest, rng) {
    super(ort, sessions, manifest, rng);
    this.stateSize = manifest.recurrent.state_size;
    this.resetAction = Number(manifest.recurrent.reset?.prev_action ?? -1);
    this.newLevel();
  }
  describe() {
    return { title: "recurrent family (RL\u00b2)",
      carries: `memory: GRU state (${this.stateSize} numbers), the previous action and reward `
        + "carried across episodes; reset at a new level (every edit)" };
  }
  newLevel() {
    this.state = new Float32Array(this.stateSize);
    this.prevAction = this.resetAction;
    this.prevReward = 0;
    this.episodeStart = 1;
  }
  newEpisode() {
    this.episodeStart = 1;
  }
  async act(observation) {
    const log = { state: list(this.state), prev_action: this.prevAction,
      prev_reward: this.prevReward, episode_start: this.episodeStart };
    const feeds = { observation: this.f32(observation, [1, this.obsDim]),
      prev_action: this.i64([this.prevAction], [1]), prev_reward: this.f32([this.prevReward], [1]),
      episode_start: this.f32([this.episodeStart], [1]), state: this.f32(this.state, [1, this.stateSize]),
      ...this.noiseFeeds(log) };
    const out = await this.sessions.policy.run(feeds);
    const action = Number(out.action.data[0]);
    log.logits = list(out.logits.data);
    this.state = Float32Array.from(out.state_out.data);
    log.state_out = list(this.state);
    this.prevAction = action;
    this.episodeStart = 0;
    return { action, log };
  }
  async outcome(reward) {
    this.prevReward = Math.fround(reward);
    return {};
  }
}

class ContextAgent extends Base {
  family = "context";
  constructor(ort, sessions, manifest, rng) {
    super(ort, sessions, manifest, rng);
    this.latentSize = manifest.context.latent_size;
    this.sampleLatent = manifest.context.latent_mode === "sample";
    this.perStep = (manifest.context.z_update ?? "episode") === "step";
    this.newLevel();
  }
  describe() {
    const z = this.sampleLatent ? "a sample of the posterior" : "the posterior mean";
    const when = this.perStep ? "before every step" : "at each episode's start";
    return { title: "context family (task inference, PEARL-style)",
      carries: `memory: the task posterior's two sums (${this.latentSize} numbers each) carried `
        + `across episodes, encoder.onnx after every step, z = ${z} made ${when}; reset at a `
        + "new level (every edit)" };
  }
  newLevel() {
    const n = this.latentSize;
    this.precisionSum = new Float32Array(n).fill(1);
    this.weightedSum = new Float32Array(n);
    this.mean = new Float32Array(n);
    this.variance = new Float32Array(n).fill(1);
    this.normal = null;
    this.z = null;
  }
  latent() {
    if (!this.normal) return Float32Array.from(this.mean);
    const f = Math.fround;
    return Float32Array.from(this.mean, (m, i) => f(m + f(f(Math.sqrt(this.variance[i])) * this.normal[i])));
  }
  newEpisode() {
    this.normal = this.sampleLatent ? Float32Array.from({ length: this.latentSize }, () => this.rng.normal()) : null;
    this.z = this.latent();
  }
  async act(observation) {
    if (this.perStep || !this.z) this.z = this.latent();
    const log = { z: list(this.z), normal: this.normal ? list(this.normal) : null };
    const feeds = { observation: this.f32(observation, [1, this.obsDim]),
      z: this.f32(this.z, [1, this.latentSize]), ...this.noiseFeeds(log) };
    const out = await this.sessions.policy.run(feeds);
    const action = Number(out.action.data[0]);
    log.logits = list(out.logits.data);
    this.inFlight = { observation, action };
    return { action, log };
  }
  async outcome(reward, nextObservation) {
    const n = this.latentSize;
    const sums = { precision_sum: list(this.precisionSum), weighted_sum: list(this.weightedSum) };
    const out = await this.sessions.encoder.run({
      observation: this.f32(this.inFlight.observation, [1, this.obsDim]),
      action: this.i64([this.inFlight.action], [1]), reward: this.f32([reward], [1]),
      next_observation: this.f32(nextObservation, [1, this.obsDim]),
      precision_sum: this.f32(this.precisionSum, [1, n]), weighted_sum: this.f32(this.weightedSum, [1, n]) });
    this.precisionSum = Float32Array.from(out.precision_sum_out.data);
    this.weightedSum = Float32Array.from(out.weighted_sum_out.data);
    this.mean = Float32Array.from(out.posterior_mean.data);
    this.variance = Float32Array.from(out.posterior_variance.data);
    this.inFlight = null;
    return { encoder: { ...sums, posterior_mean: list(this.mean), posterior_variance: list(this.variance),
      precision_sum_out: list(this.precisionSum), weighted_sum_out: list(this.weightedSum) } };
  }
}

/** weights.bin's parameters by input name (little-endian float32 at the manifest's offsets). */
function readWeights(buffer, manifest) {
  const view = new DataView(buffer);
  return Object.fromEntries(manifest.weights.map((spec) => [spec.input_name,
    Float32Array.from({ length: spec.count }, (_, i) => view.getFloat32(spec.offset_bytes + 4 * i, true))]));
}

/** The agent of an export folder (URL relative to the page) for its family. */
export async function loadAgent(ort, folder, manifest, family, rng) {
  const files = manifest.files;
  const url = (name) => `${folder}/${files[name].path ?? name}`;
  const open = (name) => ort.InferenceSession.create(url(name), { executionProviders: ["wasm"] });
  const sessions = { policy: await open("policy.onnx") };
  if (family === "adapter") {
    sessions.weights = await open("policy_weights.onnx");
    sessions.adapter = await open("adapter.onnx");
    const response = await fetch(url("weights.bin"));
    if (!response.ok) throw new Error(`cannot fetch weights.bin (${response.status})`);
    return new AdapterAgent(ort, sessions, manifest, rng, readWeights(await response.arrayBuffer(), manifest));
  }
  if (family === "context") {
    sessions.encoder = await open("encoder.onnx");
    return new ContextAgent(ort, sessions, manifest, rng);
  }
  if (family === "recurrent") return new RecurrentAgent(ort, sessions, manifest, rng);
  return new PolicyAgent(ort, sessions, manifest, rng);
}
