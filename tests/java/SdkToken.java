// Mints an Event Hubs SAS token with the Azure Java SDK's own code
// (EventHubSharedKeyCredential of com.azure:azure-messaging-eventhubs) and prints it.
// Usage: java -cp '<sdk libs>/*' SdkToken.java <key name> <key> <audience URL>
import com.azure.core.credential.AccessToken;
import com.azure.core.credential.TokenRequestContext;
import com.azure.messaging.eventhubs.implementation.EventHubSharedKeyCredential;
import java.time.Duration;

public class SdkToken {
    public static void main(String[] args) {
        EventHubSharedKeyCredential credential =
            new EventHubSharedKeyCredential(args[0], args[1], Duration.ofHours(1));
        AccessToken token =
            credential.getToken(new TokenRequestContext().addScopes(args[2])).block();
        System.out.print(token.getToken());
    }
}
