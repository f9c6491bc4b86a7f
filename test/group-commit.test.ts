// GroupCommit on its own: what arrives in one turn of the event loop is written together, and a refused
// group is written again one input at a time so that each caller gets its own outcome.
import { expect, test } from 'bun:test'
import { GroupCommit } from '../src/lib/group-commit'

test('inputs added in the same turn are written in one call, each caller getting its own result', async () => {
  const calls: number[][] = []
  const group = new GroupCommit(async (inputs: number[]) => {
    calls.push(inputs)
    return inputs.map((n) => n * 10)
  })
  const results = await Promise.all([group.add(1), group.add(2), group.add(3)])
  expect(results).toEqual([10, 20, 30])
  expect(calls).toEqual([[1, 2, 3]])
})

test('inputs added while a group is being written form the next group', async () => {
  const calls: number[][] = []
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const group = new GroupCommit(async (inputs: number[]) => {
    calls.push(inputs)
    if (calls.length === 1) await gate
    return inputs
  })
  const first = group.add(1)
  await new Promise((resolve) => setImmediate(resolve))
  const later = [group.add(2), group.add(3)]
  release()
  expect(await Promise.all([first, ...later])).toEqual([1, 2, 3])
  expect(calls).toEqual([[1], [2, 3]])
})

test('a refused group is written input by input: the bad one is refused alone, the others stored', async () => {
  const calls: number[][] = []
  const group = new GroupCommit(async (inputs: number[]) => {
    calls.push(inputs)
    if (inputs.includes(13)) throw new Error(`13 is refused`)
    return inputs
  })
  const outcomes = await Promise.allSettled([group.add(12), group.add(13), group.add(14)])
  expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
  expect((outcomes[1] as PromiseRejectedResult).reason.message).toBe('13 is refused')
  expect(calls).toEqual([[12, 13, 14], [12], [13], [14]])
})

test('a group never exceeds its maximum size', async () => {
  const sizes: number[] = []
  const group = new GroupCommit(async (inputs: number[]) => {
    sizes.push(inputs.length)
    return inputs
  }, 4)
  await Promise.all(Array.from({ length: 10 }, (_, i) => group.add(i)))
  expect(sizes).toEqual([4, 4, 2])
})

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

test('while writers are concurrent, inputs arriving over the next turns join the group being gathered', async () => {
  const calls: number[][] = []
  const group = new GroupCommit(async (inputs: number[]) => {
    calls.push(inputs)
    return inputs
  })
  await Promise.all([group.add(1), group.add(2)])
  await nextTurn()
  const first = group.add(3)
  await nextTurn()
  const second = group.add(4)
  await nextTurn()
  const third = group.add(5)
  expect(await Promise.all([first, second, third])).toEqual([3, 4, 5])
  expect(calls).toEqual([
    [1, 2],
    [3, 4, 5],
  ])
})

test("a lone writer's input is written in the turn it arrives, not held for others", async () => {
  const calls: number[][] = []
  const group = new GroupCommit(async (inputs: number[]) => {
    calls.push(inputs)
    return inputs
  })
  await group.add(1)
  await nextTurn()
  const first = group.add(2)
  await nextTurn()
  const second = group.add(3)
  expect(await Promise.all([first, second])).toEqual([2, 3])
  expect(calls).toEqual([[1], [2], [3]])
})

test('a group that reaches its maximum size is written at once, not held for more', async () => {
  const sizes: number[] = []
  const group = new GroupCommit(async (inputs: number[]) => {
    sizes.push(inputs.length)
    return inputs
  }, 3)
  await Promise.all([group.add(0), group.add(1)])
  await nextTurn()
  const pending = [group.add(2), group.add(3), group.add(4)]
  await nextTurn()
  expect(sizes).toEqual([2, 3])
  pending.push(group.add(5))
  await Promise.all(pending)
  expect(sizes).toEqual([2, 3, 1])
})
