// Captures microphone audio in the audio thread and turns it into 16 kHz s16le mono PCM.
// Input arrives at the context's rate (often 48 kHz): each output sample is the average of the
// input samples it covers (a box low-pass before decimation, enough for speech recognition).
// Frames of `frameSamples` go to the page as transferable ArrayBuffers; "flush" sends what is
// left (marked last), "reset" drops it.
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || 16000;
    this.frameSamples = opts.frameSamples || 1600;
    this.step = sampleRate / this.targetRate; // input samples per output sample
    this.out = new Int16Array(this.frameSamples);
    this.count = 0;
    this.phase = 0;
    this.sum = 0;
    this.sumCount = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") this.send(true);
      else if (event.data === "reset") this.reset();
    };
  }

  reset() {
    this.count = 0;
    this.phase = 0;
    this.sum = 0;
    this.sumCount = 0;
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.out[this.count++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.count === this.frameSamples) this.send(false);
  }

  send(last) {
    const pcm = this.out.slice(0, this.count);
    this.count = 0;
    this.port.postMessage({ pcm: pcm.buffer, last }, [pcm.buffer]);
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const length = input[0].length;
    for (let i = 0; i < length; i++) {
      let value = 0;
      for (let c = 0; c < channels; c++) value += input[c][i];
      value /= channels;
      if (this.step <= 1) {
        // The context runs at or below 16 kHz: repeat samples up to the target rate.
        this.phase += 1 / this.step;
        while (this.phase >= 1) {
          this.push(value);
          this.phase -= 1;
        }
        continue;
      }
      this.sum += value;
      this.sumCount += 1;
      this.phase += 1;
      if (this.phase >= this.step) {
        this.phase -= this.step;
        this.push(this.sum / this.sumCount);
        this.sum = 0;
        this.sumCount = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
