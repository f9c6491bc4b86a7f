// Types for parse-prefer-header (it ships none): preference names camel-cased, values as sent or true.
declare module 'parse-prefer-header' {
  export default function parsePreferHeader(
    header: string | string[] | null | undefined,
  ): Record<string, string | true>
}
