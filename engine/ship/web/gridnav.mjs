// GridNav in JavaScript: the step rule of games/gridnav/dynamics.py (initial_state, observe,
// step) for one env, with the counter-based random numbers of engine/hashrandom.py. No
// dependencies. Levels are layouts (rows joined by "/": "." floor, "#" wall, "A" start, "G"
// goal): generated levels come from Python (numpy's PCG64 is not ported). Every value that
// Python computes in float32 is rounded with Math.fround at the same place, so observations
// and rewards are bit for bit the Python game's (tests/test_playground_game.py).

export const MIN_SIZE = 5;
export const MAX_SIZE = 9;
export const NUM_ACTIONS = 4; // 0 up, 1 down, 2 left, 3 right
const DX = [0, 0, -1, 1];
const DY = [-1, 1, 0, 0]; // row 0 is the top
// The 8 symmetries of the square: actual direction of intended action 0..3.
export const CONTROLS = {
  normal: [0, 1, 2, 3],
  rotated_90: [3, 2, 0, 1],
  rotated_180: [1, 0, 3, 2],
  rotated_270: [2, 3, 1, 0],
  mirrored: [0, 1, 3, 2],
  flipped: [1, 0, 2, 3],
  transposed: [2, 3, 0, 1],
  antitransposed: [3, 2, 1, 0],
};

// -- engine/hashrandom.py: splitmix64 on 64-bit words ------------------------------------
const MASK64 = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const MUL1 = 0xbf58476d1ce4e5b9n;
const MUL2 = 0x94d049bb133111ebn;

export function mix64(value) {
  let x = (BigInt.asUintN(64, value) + GOLDEN) & MASK64;
  x = ((x ^ (x >> 30n)) * MUL1) & MASK64;
  x = ((x ^ (x >> 27n)) * MUL2) & MASK64;
  return x ^ (x >> 31n);
}

/** hashrandom.stream_key(seed, index), as an unsigned 64-bit BigInt. */
export function streamKey(seed, index) {
  return mix64(BigInt.asUintN(64, BigInt(seed)) ^ mix64(BigInt(index)));
}

/** hashrandom.uniform: a float32 number in [0, 1) (24 bits) for (key, counter). */
export function uniform(key, counter) {
  const bits = mix64(key ^ mix64(BigInt(counter)));
  return Number((bits >> 40n) & 0xffffffn) / 16777216;
}

// -- levels ----------------------------------------------------------------------------
/** The level a layout describes ({size, walls[y][x], start: [x, y], goal}); throws an
 * Error naming the first problem, as games/gridnav/levels.py parse_layout does. */
export function parseLayout(text) {
  const rows = String(text).split("/");
  const size = rows.length;
  if (size < MIN_SIZE || size > MAX_SIZE) {
    throw new Error(`a layout has ${MIN_SIZE} to ${MAX_SIZE} rows separated by '/', got ${size}`);
  }
  const marks = { A: [], G: [] };
  const walls = rows.map((row, y) => {
    if (row.length !== size) {
      throw new Error(`a layout is square: row ${y} has ${row.length} cells, there are ${size} rows`);
    }
    return [...row].map((c, x) => {
      if (!".#AG".includes(c)) throw new Error(`row ${y} has '${c}': use . floor, # wall, A start, G goal`);
      if (c in marks) marks[c].push([x, y]);
      return c === "#";
    });
  });
  for (const [mark, what] of [["A", "start"], ["G", "goal"]]) {
    if (marks[mark].length !== 1) {
      throw new Error(`a layout has exactly one ${mark} (the ${what}), got ${marks[mark].length}`);
    }
  }
  const level = { size, walls, start: marks.A[0], goal: marks.G[0] };
  const distance = distanceMap(level);
  if (distance[level.start[1]][level.start[0]] < 0) {
    throw new Error("the goal G cannot be reached from the start A");
  }
  return level;
}

/** A level written as a layout (parseLayout reads it back). */
export function layoutOf(level) {
  const rows = level.walls.map((row) => row.map((wall) => (wall ? "#" : ".")));
  rows[level.start[1]][level.start[0]] = "A";
  rows[level.goal[1]][level.goal[0]] = "G";
  return rows.map((row) => row.join("")).join("/");
}

/** Moves on a shortest path from every cell to the goal ([y][x]; -1: a wall or cut off). */
export function distanceMap(level) {
  const { size, walls, goal } = level;
  const distance = walls.map((row) => row.map(() => -1));
  distance[goal[1]][goal[0]] = 0;
  const queue = [goal];
  for (let head = 0; head < queue.length; head++) {
    const [x, y] = queue[head];
    for (let d = 0; d < NUM_ACTIONS; d++) {
      const nx = x + DX[d], ny = y + DY[d];
      if (nx >= 0 && nx < size && ny >= 0 && ny < size && !walls[ny][nx] && distance[ny][nx] < 0) {
        distance[ny][nx] = distance[y][x] + 1;
        queue.push([nx, ny]);
      }
    }
  }
  return distance;
}

// -- the game ----------------------------------------------------------------------------
/** One GridNav env: a level and the variant's rules ({controls, slip, goal_reward,
 * progress_reward, step_cost, time_limit}); reset(seed) as GridNavEnv.reset(seed=seed). */
export class GridNav {
  constructor(level, rules) {
    this.level = level;
    this.distance = distanceMap(level);
    this.controls = CONTROLS[rules.controls];
    if (!this.controls) throw new Error(`unknown controls ${rules.controls}`);
    const f = Math.fround;
    this.slip = f(rules.slip);
    this.goalReward = f(rules.goal_reward);
    this.progressReward = f(rules.progress_reward);
    this.stepCost = f(rules.step_cost);
    this.timeLimit = rules.time_limit;
    this.x = level.start[0];
    this.y = level.start[1];
    this.t = 0;
    this.key = streamKey(0, 0);
  }

  /** A new episode from the start cell with the stream key stream_key(seed, 0). */
  reset(seed) {
    this.key = streamKey(seed, 0);
    this.x = this.level.start[0];
    this.y = this.level.start[1];
    this.t = 0;
    return this.observe();
  }

  blocked(x, y) {
    const size = this.level.size;
    return x < 0 || y < 0 || x >= size || y >= size || this.level.walls[y][x];
  }

  /** The float32 observation [ax, ay, gx - ax, gy - ay] / (size - 1), walls up, down, left,
   * right, t / time_limit. */
  observe() {
    const f = Math.fround;
    const scale = this.level.size - 1;
    const [gx, gy] = this.level.goal;
    const obs = new Float32Array(9);
    obs[0] = f(this.x / scale);
    obs[1] = f(this.y / scale);
    obs[2] = f((gx - this.x) / scale);
    obs[3] = f((gy - this.y) / scale);
    for (let d = 0; d < NUM_ACTIONS; d++) obs[4 + d] = this.blocked(this.x + DX[d], this.y + DY[d]) ? 1 : 0;
    obs[8] = f(this.t / this.timeLimit);
    return obs;
  }

  /** Move by an intended action 0..3: {observation, reward, terminated, truncated}. */
  step(action) {
    if (!(Number.isInteger(action) && action >= 0 && action < NUM_ACTIONS)) {
      throw new Error(`action must be in 0..${NUM_ACTIONS - 1}, got ${action}`);
    }
    const f = Math.fround;
    const slipped = uniform(this.key, 2 * this.t) < this.slip;
    const randomDirection = Math.floor(uniform(this.key, 2 * this.t + 1) * 4);
    const direction = slipped ? randomDirection : this.controls[action];
    const tx = this.x + DX[direction], ty = this.y + DY[direction];
    const before = this.distance[this.y][this.x];
    if (!this.blocked(tx, ty)) {
      this.x = tx;
      this.y = ty;
    }
    this.t += 1;
    const terminated = this.x === this.level.goal[0] && this.y === this.level.goal[1];
    const truncated = this.t >= this.timeLimit && !terminated;
    const shaping = f(this.progressReward * (before - this.distance[this.y][this.x]));
    const base = terminated ? f(this.goalReward - this.stepCost) : -this.stepCost;
    return { observation: this.observe(), reward: f(base + shaping), terminated, truncated };
  }
}
