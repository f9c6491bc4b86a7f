// The fleet page's map (Leaflet): one point per location with coordinates, named, coloured by its sensors'
// status. No tiles unless the page is opened with ?tiles=<URL template>: the points are vectors on a plain
// background, so the map works with no internet.
import L from 'leaflet'
import type { Location } from '../client'

export type PlaceStatus = 'online' | 'offline' | 'unknown' | 'empty'

const COLOURS: Record<PlaceStatus, string> = {
  online: '#15803d',
  offline: '#b91c1c',
  unknown: '#66727f',
  empty: '#94a3b8',
}

export class FleetMap {
  private readonly map: L.Map
  private readonly points = new Map<number, L.CircleMarker>()
  private fitted = false

  constructor(
    readonly box: HTMLElement,
    tiles?: string,
  ) {
    this.map = L.map(box, { attributionControl: Boolean(tiles), preferCanvas: false }).setView(
      [20, 0],
      1,
    )
    if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(this.map)
  }

  /** Draws the located places (others are left out), coloured by status; fits the view the first time. */
  update(places: Iterable<Location>, statusOf: (id: number) => PlaceStatus) {
    const seen = new Set<number>()
    for (const place of places) {
      if (place.latitud === null || place.longitud === null) continue
      seen.add(place.id)
      const status = statusOf(place.id)
      const at = L.latLng(place.latitud, place.longitud)
      let point = this.points.get(place.id)
      if (!point) {
        point = L.circleMarker(at, { radius: 8, weight: 2, fillOpacity: 0.8 })
          .bindTooltip('', { permanent: true, direction: 'right', className: 'map-label' })
          .addTo(this.map)
        this.points.set(place.id, point)
      }
      point.setLatLng(at)
      point.setStyle({ color: COLOURS[status], fillColor: COLOURS[status] })
      point.setTooltipContent(place.nombre)
      const element = point.getElement()
      if (element instanceof SVGElement) {
        element.dataset.locationId = String(place.id)
        element.dataset.status = status
      }
    }
    for (const [id, point] of this.points)
      if (!seen.has(id)) {
        point.remove()
        this.points.delete(id)
      }
    this.box.dataset.points = String(this.points.size)
    if (!this.fitted && this.points.size > 0) {
      this.fitted = true
      const bounds = L.latLngBounds([...this.points.values()].map((p) => p.getLatLng()))
      this.map.fitBounds(bounds.pad(0.3), { maxZoom: 12 })
    }
  }
}
