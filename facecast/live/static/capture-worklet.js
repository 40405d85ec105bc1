// Audio capture for facecast live: mixes the input to mono, resamples it to 16 kHz with a
// windowed-sinc low-pass (cut-off 7.2 kHz, Blackman window, 8 zero crossings a side) and posts
// batches of `batch` samples (Float32Array) with the context time of their first sample.
const OUT_RATE = 16000;
const CUTOFF_HZ = 7200;
const ZERO_CROSSINGS = 8;
const TABLE_STEPS = 64; // kernel table entries per input sample

class FacecastCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.batch = opts.batch || 320;
    this.ratio = sampleRate / OUT_RATE; // input samples per output sample
    const fc = Math.min(CUTOFF_HZ, 0.45 * sampleRate) / sampleRate; // cycles per input sample
    this.half = Math.ceil(ZERO_CROSSINGS / (2 * fc)); // kernel half width, input samples
    const n = this.half * TABLE_STEPS + 2;
    this.table = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const d = i / TABLE_STEPS;
      const x = 2 * fc * d;
      const sinc = d === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = d >= this.half ? 0 : 0.42 + 0.5 * Math.cos(Math.PI * d / this.half) + 0.08 * Math.cos(2 * Math.PI * d / this.half);
      this.table[i] = 2 * fc * sinc * w;
    }
    this.buf = new Float32Array(8192);
    this.len = 0;       // valid samples in buf
    this.start = 0;     // absolute input index of buf[0]
    this.next = 0;      // next output sample index
    this.out = new Float32Array(this.batch);
    this.outLen = 0;
    this.firstTime = null;
    this.active = true;
    this.port.onmessage = (e) => { if (e.data === "stop") this.active = false; };
  }

  kernel(d) {
    const a = Math.abs(d) * TABLE_STEPS;
    const i = a | 0;
    if (i >= this.table.length - 1) return 0;
    const f = a - i;
    return this.table[i] * (1 - f) + this.table[i + 1] * f;
  }

  append(ch) {
    const m = ch[0].length;
    if (this.len + m > this.buf.length) {
      const nb = new Float32Array(Math.max(this.buf.length * 2, this.len + m));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    const dst = this.buf;
    const k = 1 / ch.length;
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let c = 0; c < ch.length; c++) s += ch[c][j];
      dst[this.len + j] = s * k;
    }
    this.len += m;
  }

  process(inputs) {
    if (!this.active) return false;
    const ch = inputs[0];
    if (!ch || ch.length === 0 || !ch[0]) return true;
    if (this.firstTime === null) this.firstTime = currentTime;
    this.append(ch);
    const end = this.start + this.len; // absolute index one past the last input sample
    for (;;) {
      const p = this.next * this.ratio;
      const c = Math.floor(p);
      if (c + this.half >= end) break;
      let acc = 0;
      const lo = Math.max(c - this.half + 1, 0);
      for (let k = lo; k <= c + this.half; k++) acc += this.buf[k - this.start] * this.kernel(p - k);
      this.out[this.outLen++] = acc;
      this.next++;
      if (this.outLen === this.batch) {
        const t = this.firstTime + (this.next - this.batch) / OUT_RATE;
        this.port.postMessage({ samples: this.out, t }, [this.out.buffer]);
        this.out = new Float32Array(this.batch);
        this.outLen = 0;
      }
    }
    // keep what the next outputs need
    const keepFrom = Math.floor(this.next * this.ratio) - this.half - 1;
    const drop = keepFrom - this.start;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.start += drop;
    }
    return true;
  }
}

registerProcessor("facecast-capture", FacecastCapture);
