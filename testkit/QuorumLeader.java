// Prints the node id of the active KRaft controller (the metadata quorum's leader), through Kafka's Admin API
// (KIP-836), for the fault tests that kill it. Brokers cannot tell: in KRaft mode the controller id of a metadata
// or DescribeCluster answer is a random live broker, not the controller.
//   java -cp '<kafka libs>/*' QuorumLeader.java <bootstrap servers>
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;

public class QuorumLeader {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("request.timeout.ms", "10000");
        props.put("default.api.timeout.ms", "20000");
        try (Admin admin = Admin.create(props)) {
            System.out.println(admin.describeMetadataQuorum().quorumInfo().get().leaderId());
        }
    }
}
