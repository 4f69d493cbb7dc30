// Mints a SAS token with @azure/core-amqp's own code and prints it.
// Usage: node sdk_token.mjs KEY_NAME KEY AUDIENCE
import { createSasTokenProvider } from "@azure/core-amqp";

const [name, key, audience] = process.argv.slice(2);
const provider = createSasTokenProvider({ name, key });
const token = await provider.getToken(audience);
process.stdout.write(token.token);
