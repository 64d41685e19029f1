#!/usr/bin/env bash
# The seed page ("Profile export jobs API endpoint") run literally with curl against upstack: only the host
# changes (and the comma the page's create-job body lacks after `additionalFields` is added). Before the
# page's own requests, the session loads a few profiles and events, since an export of nothing shows little.
#
#   usage: docs/examples/seed-page-session.sh [BASE_URL]      (default http://127.0.0.1:8080)
# Needs curl and jq. Exits non-zero at the first answer that is not the documented shape.
set -euo pipefail
BASE=${1:-http://127.0.0.1:8080}
ACCESS_TOKEN=${ACCESS_TOKEN:-local-token}
API_KEY=${API_KEY:-local-key}
ORG_ID=${ORG_ID:-SEEDPAGE$RANDOM@AdobeOrg}
SANDBOX_NAME=${SANDBOX_NAME:-prod}
H=(-H "Authorization: Bearer $ACCESS_TOKEN" -H "x-api-key: $API_KEY" -H "x-gw-ims-org-id: $ORG_ID"
   -H "x-sandbox-name: $SANDBOX_NAME")
say() { printf '\n### %s\n' "$*" >&2; }
check() { jq -e "$1" >/dev/null || { echo "unexpected answer for: $1" >&2; exit 1; }; }

say "Load two profile fragments and two events (Catalog + Batch Ingestion)"
profiles=$(curl -sf -X POST "$BASE/data/foundation/catalog/dataSets" "${H[@]}" -H 'Content-Type: application/json' \
  -d '{"name":"CRM profiles","schemaRef":{"id":"https://ns.adobe.com/acme/schemas/crm","contentType":"application/vnd.adobe.xed+json;version=1"},"tags":{"unifiedProfile":["enabled:true"]}}' | jq -r '.[0] | split("/")[-1]')
events=$(curl -sf -X POST "$BASE/data/foundation/catalog/dataSets" "${H[@]}" -H 'Content-Type: application/json' \
  -d '{"name":"Web events","schemaRef":{"id":"https://ns.adobe.com/acme/schemas/web-experienceevent","contentType":"application/vnd.adobe.xed+json;version=1"},"tags":{"unifiedProfile":["enabled:true"]}}' | jq -r '.[0] | split("/")[-1]')
load() {  # dataset, file name, JSON lines
  local batch
  batch=$(curl -sf -X POST "$BASE/data/foundation/import/batches" "${H[@]}" -H 'Content-Type: application/json' \
    -d "{\"datasetId\":\"$1\",\"inputFormat\":{\"format\":\"json\"}}" | jq -r .id)
  printf '%s' "$3" | curl -sf -X PUT "$BASE/data/foundation/import/batches/$batch/datasets/$1/files/$2" "${H[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary @- >/dev/null
  curl -sf -X POST "$BASE/data/foundation/import/batches/$batch?action=COMPLETE" "${H[@]}" >/dev/null
  for _ in $(seq 1 100); do
    status=$(curl -sf "$BASE/data/foundation/catalog/batches/$batch" "${H[@]}" | jq -r ".\"$batch\".status")
    [ "$status" = success ] && return 0
    [ "$status" = failed ] && { echo "batch $batch failed" >&2; exit 1; }
    sleep 0.2
  done
  echo "batch $batch still $status" >&2; exit 1
}
load "$profiles" crm.json '{"identityMap":{"Email":[{"id":"jane@example.com","primary":true}],"ECID":[{"id":"ecid-1"}]},"personalEmail":{"address":"jane@example.com"},"person":{"name":{"firstName":"Jane"}}}
{"identityMap":{"Email":[{"id":"john@example.com","primary":true}]},"personalEmail":{"address":"john@example.com"}}'
load "$events" web.json '{"_id":"e1","timestamp":"2024-05-01T10:00:00Z","identityMap":{"ECID":[{"id":"ecid-1","primary":true}]},"environment":{"browserDetails":{"name":"Chrome","version":"124"}}}
{"_id":"e2","timestamp":"2024-05-02T10:00:00Z","identityMap":{"ECID":[{"id":"ecid-1","primary":true}]},"environment":{"browserDetails":{"name":"Firefox","version":"125"}}}'

say "A merge policy that stitches identities (the page names one by id and version)"
policy=$(curl -sf -X POST "$BASE/data/core/ups/config/mergePolicies" "${H[@]}" -H 'Content-Type: application/json' \
  -d '{"name":"stitched","identityGraph":{"type":"pdg"},"attributeMerge":{"type":"timestampOrdered"},"schema":{"name":"_xdm.context.profile"},"default":false}' | jq -r .id)

say "POST /dataSets (the page's request)"
created=$(curl -sf -X POST \
  "$BASE/data/foundation/catalog/dataSets" \
  -H 'Content-Type: application/json' \
  "${H[@]}" \
  -d '{
        "name": "Profile Data Export",
        "schemaRef": {
          "id": "https://ns.adobe.com/xdm/context/profile__union",
          "contentType": "application/vnd.adobe.xed+json;version=1"
        }
      }')
echo "$created"
echo "$created" | check 'length == 1 and (.[0] | test("^@/dataSets/[0-9a-f]{24}$"))'
target=$(echo "$created" | jq -r '.[0] | split("/")[-1]')

say "POST /export/jobs (the page's request, comma fixed)"
job=$(curl -sf -X POST \
  "$BASE/data/core/ups/export/jobs" \
  -H 'Content-Type: application/json' \
  "${H[@]}" \
  -d '{
    "fields": "identities.id,personalEmail.address",
    "mergePolicy": {
      "id": "'"$policy"'",
      "version": 1
    },
    "additionalFields": {
      "eventList": {
        "fields": "environment.browserDetails.name,environment.browserDetails.version",
        "filter": {
          "fromIngestTimestamp": "2018-10-25T13:22:04-07:00"
        }
      }
    },
    "destination": {
      "datasetId": "'"$target"'",
      "segmentPerBatch": false
    },
    "schema": {
      "name": "_xdm.context.profile"
    }
  }')
echo "$job" | jq .
echo "$job" | check '.status == "NEW" and (.id | type) == "number" and .profileInstanceId == "ups" and .jobType == "BATCH"
  and (.destination.batchId | length) > 0 and .metrics.totalTime.startTimeInMs > 0 and .schema.name == "_xdm.context.profile"'
id=$(echo "$job" | jq -r .id)

say "GET /export/jobs/{id} until SUCCEEDED"
for _ in $(seq 1 150); do
  got=$(curl -sf -X GET "$BASE/data/core/ups/export/jobs/$id" "${H[@]}")
  status=$(echo "$got" | jq -r .status)
  [ "$status" = SUCCEEDED ] || [ "$status" = FAILED ] && break
  sleep 0.2
done
echo "$got" | jq .
echo "$got" | check '.status == "SUCCEEDED" and .computeGatewayJobId.exportJob and .metrics.profileExportTime.totalTimeInMs >= 0
  and .metrics.aCPDatasetWriteTime.totalTimeInMs >= 0 and .metrics.totalExportedProfileCounter == 2'
batch=$(echo "$got" | jq -r .destination.batchId)

say "GET /export/jobs (list)"
curl -sf -X GET "$BASE/data/core/ups/export/jobs/" "${H[@]}" | tee /dev/stderr \
  | check '(.records | length) >= 1 and .page.sortField and .page.pageSize >= 1 and (.link.next | type) == "string"'

say "Data Access: the job's batch files, and the Parquet bytes"
files=$(curl -sf "$BASE/data/foundation/export/batches/$batch/files" "${H[@]}")
echo "$files" | check '(.data | length) == 1 and .data[0].dataSetFileId'
file_id=$(echo "$files" | jq -r '.data[0].dataSetFileId')
name=$(curl -sf "$BASE/data/foundation/export/files/$file_id" "${H[@]}" | jq -r '.data[0].name')
curl -sf "$BASE/data/foundation/export/files/$file_id?path=$name" "${H[@]}" -o "${OUT_PARQUET:-/dev/null}"
[ -n "${OUT_PARQUET:-}" ] && head -c 4 "$OUT_PARQUET" | grep -q PAR1

say "DELETE /export/jobs/{id} (a new job, cancelled while NEW or running)"
second=$(curl -sf -X POST "$BASE/data/core/ups/export/jobs" -H 'Content-Type: application/json' "${H[@]}" \
  -d '{"destination":{"datasetId":"'"$target"'"},"schema":{"name":"_xdm.context.profile"}}' | jq -r .id)
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/data/core/ups/export/jobs/$second" "${H[@]}")
[ "$code" = 204 ] || { echo "cancel answered $code" >&2; exit 1; }
echo "session done: job $id SUCCEEDED into batch $batch" >&2
