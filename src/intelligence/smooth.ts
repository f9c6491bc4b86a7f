// The smoothing factor of an exponentially weighted mean over irregular time steps, remembered per call
// site: readings come at a steady pace, so the same step and time constant come again and the exp is
// skipped.

/** A function giving 1 - exp(-min(dt, tau) / tau) that keeps its last arguments and value. */
export function ewAlpha() {
  let seenDt = NaN
  let seenTau = NaN
  let seen = 0
  return (dt: number, tau: number) => {
    if (dt === seenDt && tau === seenTau) return seen
    seenDt = dt
    seenTau = tau
    seen = 1 - Math.exp(-Math.min(dt, tau) / tau)
    return seen
  }
}
