// Writes records with Apache Kafka's own Java producer, compressed with one codec:
//   java -cp 'KAFKA/libs/*' Produce.java BOOTSTRAP TOPIC CODEC COUNT
// Record i (to partition 0) has key "k<i>", value "value-<i>-<codec>" and a header "n" = i.
// $HUBGATE_KAFKA_CLIENT_PROPERTIES, when set, names client properties to load first (TLS,
// SASL: tests/src/secured.rs writes it).
import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class Produce {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        String security = System.getenv("HUBGATE_KAFKA_CLIENT_PROPERTIES");
        if (security != null) {
            try (FileReader r = new FileReader(security, StandardCharsets.UTF_8)) {
                p.load(r);
            }
        }
        p.put("bootstrap.servers", args[0]);
        p.put("compression.type", args[2]);
        // One batch for all records, so the codec applies to a multi-record batch.
        p.put("linger.ms", "100");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        int count = Integer.parseInt(args[3]);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) {
                ProducerRecord<String, String> r =
                        new ProducerRecord<>(args[1], 0, "k" + i, "value-" + i + "-" + args[2]);
                r.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                producer.send(r);
            }
            producer.flush();
        }
        System.out.println("sent " + count);
    }
}
