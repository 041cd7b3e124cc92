// Live monitor: each live stream with a preview, the publisher's rates and keyframe interval
// (with the OBS setting to change when it is too long), reconnects, renditions and viewers.
import { api, el, when } from '/js/api.js';

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve) => {
    const s = el('script', { src: '/vendor/hls.light.min.js' });
    s.onload = () => resolve(window.Hls || null);
    s.onerror = () => resolve(null);
    document.head.append(s);
  });
}

/** Renditions from the master playlist: the same document players read. */
async function renditions(channel) {
  try {
    const res = await fetch(`/live/${encodeURIComponent(channel)}/index.m3u8`, { cache: 'no-store' });
    if (!res.ok) return [];
    const text = await res.text();
    return [...text.matchAll(/#EXT-X-STREAM-INF:([^\n]*)/g)].map((m) => {
      const res = /RESOLUTION=(\d+x\d+)/.exec(m[1]);
      const bw = /[^-]BANDWIDTH=(\d+)/.exec(`,${m[1]}`);
      return `${res ? res[1] : '?'} @ ${bw ? Math.round(bw[1] / 1000) : '?'} kb/s`;
    });
  } catch {
    return [];
  }
}

/** Viewers with the product page open (live stock streams), from /metrics. */
async function sseViewers() {
  try {
    const text = await (await fetch('/metrics', { cache: 'no-store' })).text();
    const m = /^hawker_sse_subscribers(?:\{\})? (\d+(?:\.\d+)?)/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export async function render(root, { report }) {
  const error = el('p', { class: 'notice bad', role: 'alert' });
  const grid = el('div', { class: 'streams', 'aria-live': 'polite' });
  const viewers = el('p', { class: 'muted' });
  const cards = new Map();

  function card(s) {
    let c = cards.get(s.channel);
    if (!c) {
      const video = el('video', { muted: true, playsinline: true, autoplay: true, 'aria-label': `Preview of ${s.channel}` });
      c = { root: el('article', { class: 'card', 'data-channel': s.channel }), video, facts: el('dl', { class: 'facts' }), warn: el('div'), hls: null };
      c.root.append(el('h2', { text: s.channel }), video, c.warn, c.facts);
      cards.set(s.channel, c);
      loadHls().then((Hls) => {
        if (!cards.has(s.channel)) return;
        if (Hls && Hls.isSupported()) {
          c.hls = new Hls({ lowLatencyMode: true, maxBufferLength: 4 });
          c.hls.loadSource(`/live/${encodeURIComponent(s.channel)}/index.m3u8`);
          c.hls.attachMedia(video);
        } else {
          video.src = `/live/${encodeURIComponent(s.channel)}/index.m3u8`;
        }
        video.play().catch(() => {});
      });
    }
    const kbps = Math.round((s.bitrate_bps || 0) / 1000);
    const kf = s.keyframe_interval_ms ? (s.keyframe_interval_ms / 1000).toFixed(1) : '?';
    const v = s.video;
    c.warn.replaceChildren(
      ...(s.keyframe_interval_warning
        ? [el('p', { class: 'notice warn', role: 'alert' },
            `Keyframe interval ${kf} s is above 2 s: viewers fall behind. In OBS set ` +
            'Settings › Output › Keyframe Interval to 1 s.')]
        : []),
      ...((s.renditions_dropped || []).length
        ? [el('p', { class: 'notice warn', role: 'alert' },
            `${s.renditions_dropped.join(', ')} left out: this machine cannot encode ` +
            'them in real time. hawker tries again in a minute; meanwhile viewers get the ' +
            'other renditions. Fewer rungs (transcode.ladder) or a faster machine fix it.')]
        : []),
      ...(s.state === 'reconnecting' ? [el('p', { class: 'notice warn', text: `Publisher disconnected at ${when(s.disconnected_at)}: waiting for it to reconnect.` })] : []),
    );
    c.facts.replaceChildren(
      el('dt', { text: 'State' }), el('dd', { text: s.state }),
      el('dt', { text: 'Live since' }), el('dd', { text: when(s.live_since) }),
      el('dt', { text: 'Bitrate' }), el('dd', { text: `${kbps} kb/s` }),
      el('dt', { text: 'Frame rate' }), el('dd', { text: s.frame_rate ? `${Number(s.frame_rate).toFixed(1)} fps` : '?' }),
      el('dt', { text: 'Keyframe interval' }), el('dd', { class: s.keyframe_interval_warning ? 'stock low' : '', text: `${kf} s` }),
      el('dt', { text: 'Video' }), el('dd', { text: v ? `${v.width}x${v.height} ${v.codec} ${v.profile}` : 'none' }),
      el('dt', { text: 'Reconnects' }), el('dd', { text: String(s.reconnects ?? 0) }),
      el('dt', { text: 'Renditions' }), el('dd', { text: s.renditions.join(', ') || 'source only' }),
    );
    return c;
  }

  async function load() {
    try {
      const { streams } = await api('/api/streams');
      const live = new Set(streams.map((s) => s.channel));
      for (const [channel, c] of cards) {
        if (!live.has(channel)) {
          if (c.hls) c.hls.destroy();
          cards.delete(channel);
        }
      }
      for (const s of streams) {
        s.renditions = await renditions(s.channel);
        card(s);
      }
      const layout = streams.map((s) => s.channel).join(' ');
      if (layout !== grid.dataset.layout || !streams.length) grid.dataset.layout = layout;
      else return updateViewers();
      grid.replaceChildren(
        ...(streams.length
          ? streams.map((s) => cards.get(s.channel).root)
          : [el('p', { class: 'muted', text: 'Nothing is live. Streams appear here when a streamer publishes.' })]),
      );
      await updateViewers();
    } catch (e) {
      report(e, error);
    }
  }

  async function updateViewers() {
    const n = await sseViewers();
    viewers.textContent = n === null ? '' : `Viewers on product pages (all shows): ${n}`;
    error.textContent = '';
  }

  root.append(el('h1', { text: 'Live' }), viewers, error, grid);
  await load();
  const timer = setInterval(load, 2000);
  return () => {
    clearInterval(timer);
    for (const c of cards.values()) if (c.hls) c.hls.destroy();
  };
}
