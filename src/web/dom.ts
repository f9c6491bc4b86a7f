// Small DOM helpers shared by the pages' scripts.

/** The element with this id; a missing one is a page bug, so it throws. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id)
  if (!found) throw new Error(`#${id} is missing from the page`)
  return found as T
}

/** Creates an element with attributes and text or children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (key === 'class') node.className = String(value)
    else node.setAttribute(key, value === true ? '' : String(value))
  }
  node.append(...children)
  return node
}

/** HH:MM:SS.mmm of an ISO timestamp (or now), in local time. */
export function clock(iso?: string): string {
  const d = iso ? new Date(iso) : new Date()
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

/** The server's REST error body as one sentence. */
export function errorText(error: unknown): string {
  const value = (error as { value?: { message?: string } } | null)?.value
  if (value && typeof value === 'object' && value.message) return value.message
  return error instanceof Error ? error.message : String(error)
}
