// The live plot of per-episode return: one point per finished episode, a new series (and a
// dashed line) at every new level, drawn on a plain canvas.
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];

export class ReturnPlot {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = []; // {episode, value, series}
    this.series = []; // {label, start}
  }

  newSeries(label) {
    this.series.push({ label, start: this.points.length });
    this.draw();
  }

  add(value) {
    this.points.push({ episode: this.points.length, value, series: this.series.length - 1 });
    this.draw();
  }

  draw() {
    const { canvas } = this;
    const g = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, left = 44, right = 10, top = 18, bottom = 22;
    g.clearRect(0, 0, w, h);
    g.fillStyle = "#fff";
    g.fillRect(0, 0, w, h);
    const values = this.points.map((p) => p.value);
    let low = Math.min(-0.5, ...values), high = Math.max(1, ...values);
    const pad = (high - low) * 0.08;
    low -= pad; high += pad;
    const count = Math.max(10, this.points.length);
    const x = (i) => left + ((w - left - right) * (i + 0.5)) / count;
    const y = (v) => top + ((h - top - bottom) * (high - v)) / (high - low);
    g.strokeStyle = "#bbb";
    g.fillStyle = "#444";
    g.font = "11px sans-serif";
    g.beginPath();
    g.moveTo(left, top); g.lineTo(left, h - bottom); g.lineTo(w - right, h - bottom);
    g.stroke();
    for (const v of [low + pad, 0, high - pad]) {
      g.fillText(v.toFixed(2), 4, y(v) + 4);
      g.beginPath(); g.moveTo(left - 3, y(v)); g.lineTo(left, y(v)); g.stroke();
    }
    g.fillText("episode", w - right - 44, h - 6);
    g.fillText("return per episode", left + 4, 12);
    this.series.forEach((s, k) => {
      const colour = COLOURS[k % COLOURS.length];
      if (k > 0) {
        g.save(); g.setLineDash([4, 3]); g.strokeStyle = "#999";
        g.beginPath(); g.moveTo(x(s.start - 0.5), top); g.lineTo(x(s.start - 0.5), h - bottom); g.stroke();
        g.restore();
      }
      const mine = this.points.filter((p) => p.series === k);
      g.strokeStyle = colour;
      g.fillStyle = colour;
      g.beginPath();
      mine.forEach((p, i) => (i ? g.lineTo(x(p.episode), y(p.value)) : g.moveTo(x(p.episode), y(p.value))));
      g.stroke();
      for (const p of mine) { g.beginPath(); g.arc(x(p.episode), y(p.value), 2.5, 0, 2 * Math.PI); g.fill(); }
      g.fillText(s.label, x(s.start - 0.5) + 4, top + 12 + 12 * (k % 3));
    });
  }
}
