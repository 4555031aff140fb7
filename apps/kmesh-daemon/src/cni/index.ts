/** The daemon side of kmesh-cni: the installer (binary + conflist entry) and the socket server the plugin asks. */
export {
  CNI_CONFIG_EXTENSIONS,
  CNI_PLUGIN_TYPE,
  CniConfigError,
  type CniInstallOptions,
  type CniInstallResult,
  type CniUninstallResult,
  cniConfigFiles,
  DEFAULT_CNI_SOCKET,
  defaultPluginBinary,
  installCni,
  primaryConfigFile,
  readConfig,
  uninstallCni,
} from './install.js'
export {
  CNI_COMMANDS,
  type CniCommand,
  type CniLog,
  type CniPod,
  type CniServer,
  type CniServerOptions,
  type EnrolDecision,
  parseRequest,
  startCniServer,
} from './server.js'
