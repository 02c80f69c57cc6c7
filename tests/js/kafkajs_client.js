// kafkajs: admin createTopics, an idempotent producer, a consumer group that commits, then
// admin.fetchOffsets must report the committed positions. Content round-trips byte for byte.
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, groupId] = process.argv.slice(2);
const count = 150;
const kafka = new Kafka({ clientId: 'strata-e2e', brokers: [bootstrap], logLevel: logLevel.WARN });

function record(i) {
  return {
    key: i % 7 === 3 ? null : Buffer.from(`js-key-${i}`),
    value: Buffer.concat([Buffer.from(`js-value-${i}-`), Buffer.from([0, 255, i % 256])]),
    headers: { 'h-index': Buffer.from(String(i)), 'h-bin': Buffer.from([i % 256, 0, 1]) },
    timestamp: String(1700000000000 + i),
    partition: i % 2,
  };
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  if (!created) throw new Error('createTopics returned false');
  const listed = await admin.listTopics();
  if (!listed.includes(topic)) throw new Error(`topic not listed: ${listed}`);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const expected = [];
  for (let i = 0; i < count; i++) expected.push(record(i));
  await producer.send({ topic, acks: -1, messages: expected });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${got.size} of ${count}`)), 60000);
    consumer.run({
      autoCommit: true,
      eachMessage: async ({ message }) => {
        const i = Number(message.headers['h-index'].toString());
        if (got.has(i)) return reject(new Error(`record ${i} consumed twice`));
        got.set(i, message);
        if (got.size === count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.stop();
  await consumer.disconnect(); // commits the resolved offsets

  for (let i = 0; i < count; i++) {
    const e = expected[i]; const g = got.get(i);
    const same = (a, b) => (a === null ? b === null : b !== null && Buffer.compare(a, b) === 0);
    if (!same(e.key, g.key)) throw new Error(`record ${i}: key differs`);
    if (!same(e.value, g.value)) throw new Error(`record ${i}: value differs`);
    if (g.timestamp !== e.timestamp) throw new Error(`record ${i}: timestamp ${g.timestamp} != ${e.timestamp}`);
    for (const [k, v] of Object.entries(e.headers)) {
      if (!g.headers[k] || Buffer.compare(v, g.headers[k]) !== 0) throw new Error(`record ${i}: header ${k} differs`);
    }
  }

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const committed = offsets[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0);
  if (committed !== count) throw new Error(`committed offsets sum to ${committed}, expected ${count}: ${JSON.stringify(offsets)}`);
  const groups = await admin.listGroups();
  if (!groups.groups.some((g) => g.groupId === groupId)) throw new Error(`group not listed: ${JSON.stringify(groups)}`);
  await admin.disconnect();
  console.log(`OK kafkajs ${count}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
