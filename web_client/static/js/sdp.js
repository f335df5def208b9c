// Small SDP helpers for WHIP/WHEP offers.

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

export function isLoopback(host) {
  return LOOPBACK.test(String(host).replace(/^\[|\]$/g, ""));
}

/**
 * Keep the ICE candidates of `sdp` that can reach a server at `serverHost`:
 * a server reached over loopback is on this machine, so only loopback
 * candidates are useful to it; a server elsewhere can never use loopback
 * ones. (Browsers only gather loopback candidates when told to.)
 */
export function candidatesFor(sdp, serverHost) {
  const local = isLoopback(serverHost);
  const lines = sdp.split(/\r\n/);
  const kept = lines.filter((line) => {
    if (!line.startsWith("a=candidate:")) return true;
    const address = line.split(" ")[4] || "";
    return isLoopback(address) === local;
  });
  // A local server with no loopback candidate: better to try what we have.
  const anyCandidate = kept.some((line) => line.startsWith("a=candidate:"));
  return (anyCandidate ? kept : lines).join("\r\n");
}

/** Resolve once ICE gathering is complete (or after `ms`, with what we have). */
export function gatheringComplete(pc, ms = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
