// src/lib/http-errors.ts fieldName: a JSON pointer from the validator made into the name a person reads.
import { describe, expect, test } from 'bun:test'
import { fieldName } from '../src/lib/http-errors'

describe('fieldName', () => {
  test('a top-level property is its name', () => {
    expect(fieldName('/tipo', 'body')).toBe('tipo')
  })

  test('nested properties are joined with dots and array items use brackets', () => {
    expect(fieldName('/items/0/sensor_id', 'body')).toBe('items[0].sensor_id')
    expect(fieldName('/a/b/c', 'body')).toBe('a.b.c')
    expect(fieldName('/matrix/2/10', 'body')).toBe('matrix[2][10]')
  })

  test('an item of a top-level array starts with its index', () => {
    expect(fieldName('/3/temperatura', 'body')).toBe('[3].temperatura')
    expect(fieldName('/0', 'body')).toBe('[0]')
  })

  test('the whole value is named after where it came from', () => {
    expect(fieldName('', 'body')).toBe('body')
    expect(fieldName('/', 'query')).toBe('query')
    expect(fieldName(undefined, 'path')).toBe('path')
  })

  test('unescapes ~1 and ~0 of JSON pointers', () => {
    expect(fieldName('/a~1b', 'body')).toBe('a/b')
    expect(fieldName('/a~0b', 'body')).toBe('a~b')
    expect(fieldName('/a~01', 'body')).toBe('a~1')
  })
})
