// Creates ACLs through Kafka's Admin API, as the super user (scripts/stack --secure runs it once per run dir).
//   java -cp '<kafka libs>/*' Acls.java <bootstrap servers> <admin password file> [<CA file>]  < acl lines
// With a CA file (PEM), over TLS (SASL_SSL, trusting that CA): a secure stack's clients' listener.
// One ACL a line: <principal> <operation> <LITERAL|PREFIXED> <TOPIC|GROUP> <name>, e.g.
//   User:deals WRITE PREFIXED TOPIC pipelines.deals.   (the names under the run dir's topic prefix, scripts/stack)
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Scanner;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Acls {
    public static void main(String[] args) throws Exception {
        String password = Files.readString(Path.of(args[1])).strip();
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("security.protocol", args.length > 2 ? "SASL_SSL" : "SASL_PLAINTEXT");
        if (args.length > 2) {
            props.put("ssl.truststore.type", "PEM");
            props.put("ssl.truststore.location", args[2]);
        }
        props.put("sasl.mechanism", "SCRAM-SHA-512");
        props.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                + "username=\"admin\" password=\"" + password + "\";");
        List<AclBinding> acls = new ArrayList<>();
        Scanner in = new Scanner(System.in);
        while (in.hasNextLine()) {
            String[] f = in.nextLine().trim().split("\\s+");
            if (f.length != 5) continue;
            acls.add(new AclBinding(
                    new ResourcePattern(ResourceType.valueOf(f[3]), f[4], PatternType.valueOf(f[2])),
                    new AccessControlEntry(f[0], "*", AclOperation.valueOf(f[1]), AclPermissionType.ALLOW)));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(acls).all().get();
        }
        System.out.println("created " + acls.size() + " ACLs");
    }
}
