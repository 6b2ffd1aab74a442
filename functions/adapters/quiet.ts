/**
 * Imported first by the command-line entry points (for its side effect): turns off the AWS SDK's
 * "upgrade your Node.js" notice through the SDK's own switch. It concerns a developer's Node 20,
 * not the product (Lambda runs Node 22/24), and would bury the commands' output.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
