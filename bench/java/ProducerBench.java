// Kafka's own Java producer writing the records hubgate's benchmark writes, as the baseline
// of bench/src/bin/apache-kafka.rs: `concurrency` × `records` records in flight at a time
// (like `concurrency` HTTP clients each waiting for its `records`-record request), acks=all,
// linger.ms=0, no compression, no idempotence (hubgate has none).
// Usage: java -cp '<kafka>/libs/*' ProducerBench.java <bootstrap> <topic> <records> <concurrency> <seconds>
// Prints "START" when the measured window begins and "END <records> <process CPU ns> <elapsed ns>"
// at its end.
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class ProducerBench {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        int records = Integer.parseInt(args[2]), concurrency = Integer.parseInt(args[3]);
        long seconds = Long.parseLong(args[4]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("linger.ms", "0");
        p.put("compression.type", "none");
        p.put("enable.idempotence", "false");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        com.sun.management.OperatingSystemMXBean os =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            Semaphore inFlight = new Semaphore(concurrency * records);
            AtomicLong acked = new AtomicLong();
            byte[][] values = new byte[1000][];
            for (int i = 0; i < values.length; i++) {
                values[i] = String.format(
                    "{\"id\":\"dev-%04d-%06d\",\"temperature\":21.5,\"humidity\":40.25,\"site\":\"plant-7\",\"ts\":%d}",
                    i % 1000, i, 1_700_000_000_000L + i).getBytes(StandardCharsets.UTF_8);
            }
            // One second of warm-up (JIT, connections), then the measured window.
            for (int phase = 0; phase < 2; phase++) {
                long window = phase == 0 ? 1 : seconds;
                if (phase == 1) {
                    producer.flush();
                    System.out.println("START");
                    System.out.flush();
                }
                long cpu0 = os.getProcessCpuTime(), acked0 = acked.get(), t0 = System.nanoTime();
                long end = t0 + window * 1_000_000_000L;
                int i = 0;
                while (System.nanoTime() < end) {
                    inFlight.acquire();
                    producer.send(new ProducerRecord<>(topic, 0, null, values[i++ % values.length]),
                        (m, e) -> { if (e == null) acked.incrementAndGet(); inFlight.release(); });
                }
                producer.flush();
                if (phase == 1) {
                    System.out.println("END " + (acked.get() - acked0) + " "
                        + (os.getProcessCpuTime() - cpu0) + " " + (System.nanoTime() - t0));
                    System.out.flush();
                }
            }
        }
    }
}
