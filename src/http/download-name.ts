/**
 * A download's file name from a course title: `<title>-<what>-<YYYY-MM-DD>.<ext>`, with the
 * characters file systems refuse replaced, and its Content-Disposition header (RFC 6266).
 */
export function downloadName(courseTitle: string, what: string, ext: string, now: Date): string {
  const safe =
    courseTitle
      .replace(/\s+/g, ' ')
      .replace(/[/\\:*?"<>|\p{Cc}]+/gu, '-')
      .trim()
      .slice(0, 100) || 'course';
  return `${safe}-${what}-${now.toISOString().slice(0, 10)}.${ext}`;
}

/** An ASCII file name for old clients, the exact one (RFC 5987, UTF-8) for the rest. */
export function attachment(name: string): string {
  const ascii =
    name
      .normalize('NFKD')
      .replace(/[^\x20-\x7e]/g, '')
      .replace(/["\\]/g, '') || 'download';
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
