/**
 * The objects of a JSON array a configuration file holds, each with where it sits (`VARIABLE[i]`, for problems), in
 * order as they are read: an item that is not an object is a problem in its place among the others'. A value that is
 * not an array, or holds more than `max` items, is a problem and gives none.
 */
export function* configRecords(value: unknown, variable: string, noun: string, problems: string[], max = Infinity): Generator<{ readonly where: string; readonly record: Record<string, unknown> }> {
  if (!Array.isArray(value)) {
    problems.push(`${variable} must hold a JSON array of ${noun}`);
    return;
  }
  if (value.length > max) {
    problems.push(`${variable} lists ${value.length} ${noun}, more than ${max}`);
    return;
  }
  for (const [index, item] of (value as unknown[]).entries()) {
    const where = `${variable}[${index}]`;
    if (typeof item === 'object' && item !== null && !Array.isArray(item)) yield { where, record: item as Record<string, unknown> };
    else problems.push(`${where} must be an object`);
  }
}
