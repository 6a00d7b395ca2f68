// The voice page: one big talk button, the conversation as large text, every answer spoken,
// and 一键呼叫 always on screen. Protocol: voice/web/protocol.py.
"use strict";

(function () {
  const SAMPLE_RATE = 16000;
  const FRAME_SAMPLES = 1600; // 100 ms per WebSocket frame
  const HOLD_MS = 500; // pressed longer than this: push-to-talk; shorter: tap to start/stop
  const EMERGENCY_FALLBACK_MS = 8000; // no answer over the WebSocket: raise it over HTTP

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    log: $("log"),
    partial: $("partial"),
    choices: $("choices"),
    talk: $("talk"),
    talkHelp: $("talk-help"),
    emergency: $("emergency"),
    textForm: $("text-form"),
    text: $("text"),
    repeat: $("repeat"),
    linkOpen: $("link-open"),
    linkDialog: $("link-dialog"),
    linkForm: $("link-form"),
    linkCancel: $("link-cancel"),
    code: $("code"),
  };

  // Counters the browser test reads (window.linliStats).
  const stats = {
    connected: false,
    asr: null,
    framesSent: 0,
    heard: 0,
    botMessages: 0,
    audioChunksReceived: 0,
    audioChunksPlayed: 0,
    audioChunksEnded: 0,
    audioDropped: 0,
    stops: 0,
    errors: 0,
  };
  window.linliStats = stats;

  const device = deviceId();
  let ws = null;
  let reconnectDelay = 500;
  let asrAvailable = true;
  let audioCtx = null;
  let playHead = 0;
  let playing = [];
  let playRate = SAMPLE_RATE;
  let speechComplete = false; // audio_end received for the latest speech
  let mic = null; // {stream, source, node}
  let capturing = false;
  let mode = null; // "hold" | "tap" while capturing
  let pressedAt = 0;
  let pendingEmergency = null; // {id, timer}

  function deviceId() {
    const key = "linli-device";
    let id = null;
    try {
      id = localStorage.getItem(key);
    } catch (e) {
      id = null;
    }
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      id = randomId();
      try {
        localStorage.setItem(key, id);
      } catch (e) {
        /* private mode: a new device each visit */
      }
    }
    return id;
  }

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- status and conversation ---------------------------------------------------------------
  function setStatus(text, problem) {
    ui.status.textContent = text;
    ui.status.classList.toggle("problem", Boolean(problem));
  }

  function addLine(kind, who, text) {
    const item = document.createElement("li");
    item.className = kind;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who + "：";
    item.append(label, document.createTextNode(text));
    ui.log.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  function showChoices(buttons) {
    ui.choices.replaceChildren();
    for (const button of buttons || []) {
      const el = document.createElement("button");
      el.type = "button";
      el.textContent = button.title;
      el.addEventListener("click", () => {
        ensureAudio();
        addLine("heard", "我", button.title);
        sendJson({ type: "text", text: button.payload });
        ui.choices.replaceChildren();
      });
      ui.choices.append(el);
    }
  }

  // --- WebSocket -----------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/ws?device=${encodeURIComponent(device)}`);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", () => {
      reconnectDelay = 500;
      sendJson({ type: "hello", sample_rate: SAMPLE_RATE });
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data === "string") onMessage(JSON.parse(event.data));
      else onAudio(event.data);
    });
    ws.addEventListener("close", () => {
      stats.connected = false;
      stopCapture(false);
      setStatus("连接断开了，正在重新连接…", true);
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 10000);
    });
  }

  function sendJson(message) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function onMessage(message) {
    switch (message.type) {
      case "ready":
        stats.connected = true;
        stats.asr = message.asr;
        asrAvailable = Boolean(message.asr);
        setTalkEnabled(asrAvailable);
        if (asrAvailable) setStatus("请按住下面的大按钮说话。");
        else setStatus("语音识别暂不可用，请打字；紧急情况请按“一键呼叫”。", true);
        break;
      case "heard":
        if (message.final) {
          stats.heard += 1;
          ui.partial.textContent = "";
          addLine("heard", "我", message.text);
          if (mode === "tap") stopCapture(false); // the server heard the end of the answer
        } else {
          ui.partial.textContent = "正在听：" + message.text;
        }
        break;
      case "bot":
        stats.botMessages += 1;
        if (mode === "tap") stopCapture(false); // the bot answered (or asked again): stop listening
        addLine("bot", "邻里", message.text);
        showChoices(message.buttons);
        if (pendingEmergency) {
          clearTimeout(pendingEmergency.timer);
          pendingEmergency = null;
          ui.emergency.classList.remove("sending");
          setStatus("已经呼叫，工作人员马上联系您。", true);
        }
        break;
      case "audio_start":
        playRate = message.sample_rate || SAMPLE_RATE;
        speechComplete = false;
        break;
      case "audio_end":
        speechComplete = true;
        if (playing.length === 0) sendJson({ type: "played" });
        break;
      case "stop_playback":
        stopPlayback();
        break;
      case "error":
        stats.errors += 1;
        addLine("error", "提示", message.message);
        break;
      default:
        break;
    }
  }

  // --- speaking: PCM from the server through Web Audio ----------------------------------------
  function ensureAudio() {
    if (!audioCtx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      audioCtx = new Ctx();
    }
    if (audioCtx.state === "suspended") audioCtx.resume();
    return audioCtx;
  }

  function onAudio(data) {
    stats.audioChunksReceived += 1;
    if (!audioCtx || audioCtx.state !== "running") {
      stats.audioDropped += 1; // before the first tap the browser does not let a page speak
      return;
    }
    const samples = new Int16Array(data);
    if (samples.length === 0) return;
    const buffer = audioCtx.createBuffer(1, samples.length, playRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = audioCtx.createBufferSource();
    source.buffer = buffer;
    source.connect(audioCtx.destination);
    const at = Math.max(audioCtx.currentTime + 0.02, playHead);
    source.start(at);
    playHead = at + buffer.duration;
    playing.push(source);
    stats.audioChunksPlayed += 1;
    source.addEventListener("ended", () => {
      stats.audioChunksEnded += 1;
      playing = playing.filter((s) => s !== source);
      // All of it heard: the server starts waiting for the answer now.
      if (playing.length === 0 && speechComplete) sendJson({ type: "played" });
    });
  }

  function stopPlayback() {
    stats.stops += 1;
    for (const source of playing) {
      try {
        source.stop();
      } catch (e) {
        /* already stopped */
      }
    }
    playing = [];
    playHead = audioCtx ? audioCtx.currentTime : 0;
  }

  // --- listening: microphone → AudioWorklet → 16 kHz PCM frames --------------------------------
  async function openMic() {
    if (mic) return mic;
    const ctx = ensureAudio();
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await ctx.audioWorklet.addModule("/static/capture-worklet.js");
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, "pcm-capture", {
      processorOptions: { targetRate: SAMPLE_RATE, frameSamples: FRAME_SAMPLES },
    });
    node.port.onmessage = (event) => {
      const { pcm, last } = event.data;
      if ((capturing || last) && pcm.byteLength && ws && ws.readyState === WebSocket.OPEN) {
        ws.send(pcm);
        stats.framesSent += 1;
      }
      if (last) sendJson({ type: "end" });
    };
    // A silent path to the output keeps the worklet running in every browser.
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(node).connect(mute).connect(ctx.destination);
    mic = { stream, source, node };
    return mic;
  }

  async function startCapture() {
    if (!asrAvailable || capturing) return;
    stopPlayback(); // barge-in: the user talks, the bot stops at once
    sendJson({ type: "start" });
    try {
      const { node } = await openMic();
      node.port.postMessage("reset");
    } catch (error) {
      setStatus("用不了麦克风：请允许这个网页使用麦克风，或者打字。", true);
      return;
    }
    capturing = true;
    ui.talk.setAttribute("aria-pressed", "true");
    setStatus(mode === "tap" ? "正在听…说完再点一下大按钮。" : "正在听…说完松开按钮。");
  }

  function stopCapture(sendEnd) {
    if (!capturing) return;
    capturing = false;
    mode = null;
    ui.talk.setAttribute("aria-pressed", "false");
    if (asrAvailable) setStatus("请按住下面的大按钮说话。");
    if (sendEnd && mic) mic.node.port.postMessage("flush"); // the last frame, then "end"
  }

  function setTalkEnabled(enabled) {
    ui.talk.setAttribute("aria-disabled", enabled ? "false" : "true");
    ui.talk.textContent = enabled ? "按住说话" : "语音识别暂不可用";
  }

  function onTalkDown(event) {
    event.preventDefault();
    ensureAudio();
    if (!asrAvailable) return;
    if (capturing && mode === "tap") {
      stopCapture(true); // second tap ends the answer
      return;
    }
    pressedAt = performance.now();
    mode = "hold";
    startCapture();
  }

  function onTalkUp(event) {
    event.preventDefault();
    if (!capturing || mode !== "hold") return;
    if (performance.now() - pressedAt < HOLD_MS) {
      mode = "tap"; // a short tap: keep listening until the end of speech or a second tap
      setStatus("正在听…说完再点一下大按钮。");
      return;
    }
    stopCapture(true);
  }

  function onTalkKey(event) {
    if (event.key !== " " && event.key !== "Enter") return;
    event.preventDefault();
    if (event.repeat) return;
    ensureAudio();
    if (capturing) {
      stopCapture(true);
    } else if (asrAvailable) {
      mode = "tap";
      startCapture();
    }
  }

  // --- 一键呼叫 --------------------------------------------------------------------------------
  function onEmergency() {
    ensureAudio();
    const id = randomId();
    ui.emergency.classList.add("sending");
    setStatus("正在呼叫社区工作人员…", true);
    addLine("heard", "我", "一键呼叫");
    if (pendingEmergency) clearTimeout(pendingEmergency.timer);
    if (sendJson({ type: "emergency", id })) {
      // No answer in time: raise it over HTTP too; the same id never raises a second alert.
      pendingEmergency = { id, timer: setTimeout(() => emergencyOverHttp(id), EMERGENCY_FALLBACK_MS) };
    } else {
      emergencyOverHttp(id);
    }
  }

  async function emergencyOverHttp(id) {
    pendingEmergency = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const response = await fetch("/api/emergency", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ device, id }),
        });
        const body = await response.json();
        ui.emergency.classList.remove("sending");
        if (response.ok) {
          addLine("bot", "邻里", body.message || "已经通知社区工作人员，马上有人联系您。");
          setStatus("已经呼叫，工作人员马上联系您。", true);
        } else {
          addLine("error", "提示", body.detail || "紧急呼叫没有发出去！请马上拨打120或110。");
        }
        return;
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
      }
    }
    ui.emergency.classList.remove("sending");
    addLine("error", "提示", "紧急呼叫没有发出去！请马上拨打120或110。");
  }

  // --- typing, repeat, linking -----------------------------------------------------------------
  function onText(event) {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    ensureAudio();
    stopPlayback();
    if (sendJson({ type: "text", text })) {
      addLine("heard", "我", text);
      ui.text.value = "";
    } else {
      setStatus("还没连上，请稍等再发。", true);
    }
  }

  function onLink(event) {
    event.preventDefault();
    const code = ui.code.value.replace(/\D/g, "");
    if (code.length !== 6) {
      ui.code.setCustomValidity("请输入6位数字");
      ui.code.reportValidity();
      return;
    }
    ui.code.setCustomValidity("");
    ensureAudio();
    // Through the dialogue, as if said aloud: it checks the code and answers in words.
    if (sendJson({ type: "text", text: `我的验证码是${code}` })) {
      addLine("heard", "我", "绑定设备（验证码已发送）");
    }
    ui.code.value = "";
    ui.linkDialog.close();
  }

  ui.talk.addEventListener("pointerdown", onTalkDown);
  ui.talk.addEventListener("pointerup", onTalkUp);
  ui.talk.addEventListener("pointercancel", onTalkUp);
  ui.talk.addEventListener("pointerleave", onTalkUp);
  ui.talk.addEventListener("keydown", onTalkKey);
  ui.talk.addEventListener("contextmenu", (event) => event.preventDefault());
  ui.emergency.addEventListener("click", onEmergency);
  ui.textForm.addEventListener("submit", onText);
  ui.repeat.addEventListener("click", () => {
    ensureAudio();
    sendJson({ type: "repeat" });
  });
  ui.linkOpen.addEventListener("click", () => ui.linkDialog.showModal());
  ui.linkCancel.addEventListener("click", () => ui.linkDialog.close());
  ui.linkForm.addEventListener("submit", onLink);
  ui.code.addEventListener("input", () => ui.code.setCustomValidity(""));

  connect();
})();
