// A new critical alert must be impossible to miss: a banner that flashes until someone
// looks, the tab title blinking, and (once the operator has switched it on: browsers
// allow sound only after a click) a two-tone beep synthesised with WebAudio, so there
// is no audio file to fetch.

let ctx = null;
let enabled = false;
let repeatTimer = null;

export function soundEnabled() { return enabled; }

/** Must be called from a click or key press (browser autoplay rules). */
export async function enableSound(on) {
  enabled = on;
  if (on) {
    if (!ctx) ctx = new AudioContext();
    if (ctx.state === "suspended") await ctx.resume();
    beep(1);
  } else {
    stopRepeating();
  }
  localStorage.setItem("eldercare.sound", on ? "1" : "0");
}

/** On unless the operator switched it off (the choice survives reloads). */
export function soundWanted() { return localStorage.getItem("eldercare.sound") !== "0"; }

/**
 * After a reload there is no sign-in click, and browsers keep audio locked until a
 * gesture: the first click or key anywhere re-arms the sound the operator had on.
 */
export function armOnFirstGesture(onArmed) {
  if (!soundWanted() || enabled) return;
  const arm = () => {
    document.removeEventListener("pointerdown", arm, true);
    document.removeEventListener("keydown", arm, true);
    if (enabled || !soundWanted()) return;
    enableSound(true).then(onArmed, () => {});
  };
  document.addEventListener("pointerdown", arm, true);
  document.addEventListener("keydown", arm, true);
}

/** Two short tones (880 Hz, 660 Hz), repeated `times` times; the 120-call-centre style. */
export function beep(times = 3) {
  if (!enabled || !ctx) return false;
  const start = ctx.currentTime + 0.02;
  for (let i = 0; i < times; i += 1) {
    for (const [j, freq] of [880, 660].entries()) {
      const t0 = start + i * 0.7 + j * 0.25;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0);
      osc.stop(t0 + 0.24);
    }
  }
  window.__eldercareBeeps = (window.__eldercareBeeps || 0) + 1; // observed by the browser tests
  return true;
}

/** Beep now and every 10 s until stopRepeating() (an unacknowledged critical alert). */
export function startRepeating() {
  beep(3);
  if (repeatTimer === null) repeatTimer = setInterval(() => beep(2), 10000);
}

export function stopRepeating() {
  if (repeatTimer !== null) clearInterval(repeatTimer);
  repeatTimer = null;
}

let titleTimer = null;
let baseTitle = null;

export function flashTitle(text) {
  stopTitle();
  baseTitle = document.title;
  let on = false;
  titleTimer = setInterval(() => {
    on = !on;
    document.title = on ? `🔴 ${text}` : baseTitle;
  }, 800);
}

export function stopTitle() {
  if (titleTimer !== null) clearInterval(titleTimer);
  titleTimer = null;
  if (baseTitle !== null) document.title = baseTitle;
  baseTitle = null;
}
