// Parses one VAST document with @dailymotion/vast-client's VASTParser (the
// parser web players use) and prints what it understood as one JSON object:
// { version, ads: [...], errorURLTemplates, problems: [...] }.
//
//   node tests/vast/parse.mjs FILE
//
// `problems` lists everything the XML parser (@xmldom/xmldom) or the VAST
// parser complained about: XML errors and warnings, the parser's
// `VAST-warning` events (a required element or attribute missing) and its
// `VAST-error` events. A document the parser refuses outright (not XML, no
// <VAST> root) prints { fatal: message, problems } and exits 2.
import { readFileSync } from "node:fs";
import { DOMParser } from "@xmldom/xmldom";
import { VASTParser } from "@dailymotion/vast-client";

const file = process.argv[2];
if (!file) {
  console.error("usage: node parse.mjs FILE");
  process.exit(64);
}
const text = readFileSync(file, "utf8");
const problems = [];
const done = (out, code) => {
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
  process.exit(code);
};

let xml;
try {
  xml = new DOMParser({
    onError: (level, message) => problems.push({ source: "xml", level, message: String(message) }),
  }).parseFromString(text, "text/xml");
} catch (e) {
  done({ fatal: `XML: ${e.message}`, problems }, 2);
}

const parser = new VASTParser();
parser.on("VAST-warning", (w) => problems.push({ source: "vast-warning", message: w.message }));
parser.on("VAST-error", (e) => problems.push({ source: "vast-error", code: e.ERRORCODE, message: e.ERRORMESSAGE || "" }));

const mediaFile = (m) => ({
  id: m.id,
  fileURL: m.fileURL,
  mimeType: m.mimeType,
  delivery: m.deliveryType,
  width: m.width,
  height: m.height,
  bitrate: m.bitrate,
  minBitrate: m.minBitrate,
  maxBitrate: m.maxBitrate,
  fileSize: m.fileSize,
  codec: m.codec,
});

const creative = (c) => ({
  id: c.id,
  adId: c.adId,
  type: c.type,
  universalAdIds: (c.universalAdIds || []).map((u) => ({ idRegistry: u.idRegistry, value: u.value })),
  duration: c.duration,
  mediaFiles: (c.mediaFiles || []).map(mediaFile),
  mezzanine: c.mezzanine
    ? { id: c.mezzanine.id, fileURL: c.mezzanine.fileURL, type: c.mezzanine.type, delivery: c.mezzanine.delivery,
        width: c.mezzanine.width, height: c.mezzanine.height, fileSize: c.mezzanine.fileSize, codec: c.mezzanine.codec }
    : null,
  closedCaptionFiles: (c.closedCaptionFiles || []).map((f) => ({ type: f.type, language: f.language, fileURL: f.fileURL })),
  clickThrough: c.videoClickThroughURLTemplate ? c.videoClickThroughURLTemplate.url : null,
  clickTracking: (c.videoClickTrackingURLTemplates || []).map((t) => t.url),
  tracking: c.trackingEvents || {},
});

const ad = (a) => ({
  id: a.id,
  adType: a.adType,
  adServingId: a.adServingId,
  system: a.system,
  title: a.title,
  advertiser: a.advertiser ? a.advertiser.value : null,
  impression: (a.impressionURLTemplates || []).map((t) => t.url),
  error: a.errorURLTemplates || [],
  adVerifications: (a.adVerifications || []).map((v) => ({
    vendor: v.vendor,
    resource: v.resource,
    apiFramework: v.apiFramework,
    browserOptional: v.browserOptional,
    parameters: v.parameters,
  })),
  creatives: (a.creatives || []).map(creative),
});

parser
  .parseVAST(xml)
  .then((res) =>
    done(
      {
        version: res.version,
        ads: res.ads.map(ad),
        errorURLTemplates: res.errorURLTemplates,
        problems,
      },
      0,
    ),
  )
  .catch((e) => done({ fatal: `VAST: ${e.message}`, problems }, 2));
