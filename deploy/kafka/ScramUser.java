// Makes (or re-keys) a SASL/SCRAM-SHA-512 user through Kafka's Admin API, as the super user (scripts/kafka-access
// add-user): the password is read from standard input, so it is never on a command line nor in an error message.
//   java -cp '<kafka libs>/*' ScramUser.java <bootstrap servers> <client properties file> <user>  < password
import java.io.BufferedReader;
import java.io.FileReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader file = new FileReader(args[1], StandardCharsets.UTF_8)) {
            props.load(file);
        }
        props.put("bootstrap.servers", args[0]);
        String password = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
        if (password == null || password.length() < 12) {
            System.err.println("the password (standard input) must have at least 12 characters");
            System.exit(2);
        }
        var upsert = new UserScramCredentialUpsertion(
                args[2], new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password);
        try (Admin admin = Admin.create(props)) {
            admin.alterUserScramCredentials(List.of(upsert)).all().get();
        }
        System.out.println("SCRAM-SHA-512 credentials set for user " + args[2]);
    }
}
