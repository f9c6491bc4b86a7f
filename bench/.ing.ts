import { ingest } from './integrations'
const x = await ingest('matching', 32, 8000)
console.log(Math.round(x.cpuUs), Math.round(x.perSecond))
