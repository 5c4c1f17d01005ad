/** Why `tz` cannot be used, or undefined when it is an IANA zone the runtime knows. */
export function checkTimeZone(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    return `unknown time zone ${JSON.stringify(tz)}`;
  }
  return undefined;
}
