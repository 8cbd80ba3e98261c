// The public demo's load script: every iteration sends one GET to the echo Service and checks
// the answer. VUs and duration come from k6's command line (--vus, --duration), the target from
// `-e TARGET_URL=...`. The check names are wasmbench's check expressions, so both load engines
// report the same checks.
import http from 'k6/http';
import { check } from 'k6';

export default function () {
  const res = http.get(__ENV.TARGET_URL);
  check(res, {
    'status == 200': (r) => r.status === 200,
    'duration < 200': (r) => r.timings.duration < 200,
  });
}
