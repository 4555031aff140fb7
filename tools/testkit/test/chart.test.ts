/**
 * deploy/: the Helm chart renders, with several value sets, to objects that the Kubernetes OpenAPI schemas accept
 * (kubernetes-models' validators: apps/v1 DaemonSet, rbac/v1, v1 ServiceAccount, apiextensions/v1 CRD) and have no
 * field those APIs do not know (TypeScript against kubernetes-models' types), with RBAC of
 * exactly the verbs the daemon uses, probes and scrape annotations on the daemon's documented ports and paths, and
 * only environment variables the daemon's flag table knows. deploy/manifests/ is the chart rendered with its
 * defaults (and with IPsec), byte for byte. The renderer (deploy/render.mjs, helm's template language as far as the
 * chart uses it, because helm cannot be installed here) is tested on its own cases too. No cluster: nothing is
 * applied anywhere.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Ajv from 'ajv'
import YAML from 'yaml'
import { FLAGS } from '../../../apps/kmesh-daemon/src/cli-flags.js'
import { nodeInfoDocument } from '../../../apps/kmesh-daemon/src/ipsec/node-info.js'

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> }
  // biome-ignore lint/suspicious/noExplicitAny: rendered objects are checked by the schemas, then read freely
  [key: string]: any
}
interface Rendered {
  manifest: string
  documents: { source: string; object: K8sObject }[]
}
const render = (await import('../../../deploy/render.mjs')) as {
  renderTemplate(text: string, context: object, file?: string): string
  renderChart(options?: { values?: object[]; name?: string; namespace?: string }): Rendered
  mergeValues(base: object, override: object): object
  TemplateError: new (message: string) => Error
}

const deploy = fileURLToPath(new URL('../../../deploy/', import.meta.url))

/** The kubernetes-models class of an object, by apiVersion and kind (core v1 lives under v1/). */
async function modelOf(o: K8sObject): Promise<{ validate(): void }> {
  const mod = await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)
  const Model = mod[o.kind] as new (data: object) => { validate(): void }
  return new Model(o)
}

const models = new Map<string, new (data: object) => { validate(): void }>()
for (const [path, kind] of [
  ['apps/v1/DaemonSet', 'DaemonSet'],
  ['rbac.authorization.k8s.io/v1/ClusterRole', 'ClusterRole'],
] as const)
  models.set(kind, (await import(`kubernetes-models/${path}`))[kind])
function modelOfSync(o: K8sObject): void {
  const Model = models.get(o.kind)
  if (!Model) throw new Error(`no model for ${o.kind}`)
  new Model(o).validate()
}

const IPSEC_VALUES = { ipsec: { enabled: true, deleteNodeInfoOnExit: true } }
const VALUE_SETS: Record<string, object[]> = {
  defaults: [],
  ipsec: [IPSEC_VALUES],
  capabilities: [
    {
      securityContext: { privileged: false },
      node: { installCni: false, acceptAmbient: true },
      network: 'net-east',
      image: { tag: 'test' },
      metrics: { scrape: false },
      podLabels: { team: 'mesh' },
      podAnnotations: { 'example.com/owner': 'mesh' },
      extraEnv: [{ name: 'KMESH_MAP_SIZE', value: 'backend=200000' }],
      upgrade: { keepPinned: false, lockWait: '0' },
      updateStrategy: { type: 'OnDelete', rollingUpdate: null }, // null deletes the default, as with helm
    },
  ],
}

const daemonEnvNames = new Set(FLAGS.flatMap((f) => (f.env ? [f.env] : [])))
/** Downward-API variables the daemon reads besides its flags (node identity and what istiod is told). */
const METADATA_ENV = new Set(['POD_NAME', 'POD_NAMESPACE', 'INSTANCE_IP', 'SERVICE_ACCOUNT'])

for (const [name, values] of Object.entries(VALUE_SETS)) {
  t.test(`values: ${name}`, async (t) => {
    const { documents } = render.renderChart({ values })
    const ipsec = name === 'ipsec'
    t.same(
      documents.map((d) => `${d.object.kind}/${d.object.metadata.name}`),
      [
        'CustomResourceDefinition/kmeshnodeinfos.kmesh.net',
        'DaemonSet/kmesh-ts',
        'ClusterRole/kmesh-ts',
        'ClusterRoleBinding/kmesh-ts',
        ...(ipsec ? ['Role/kmesh-ts-nodeinfo', 'RoleBinding/kmesh-ts-nodeinfo'] : []),
        'ServiceAccount/kmesh-ts',
      ],
      'the rendered objects',
    )
    for (const { object, source } of documents) {
      let error = ''
      try {
        ;(await modelOf(object)).validate()
      } catch (err) {
        error = (err as Error).message
      }
      t.equal(error, '', `${object.kind}/${object.metadata.name} (${source}) is valid for ${object.apiVersion}`)
    }

    const byKind = (kind: string) => documents.find((d) => d.object.kind === kind)?.object as K8sObject
    t.same(byKind('ClusterRole').rules, [
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
    ])
    if (ipsec)
      t.same(byKind('Role').rules, [
        {
          apiGroups: ['kmesh.net'],
          resources: ['kmeshnodeinfos'],
          verbs: ['list', 'watch', 'create', 'patch', 'delete'],
        },
      ])

    const ds = byKind('DaemonSet')
    const pod = ds.spec.template.spec
    const [container] = pod.containers
    t.equal(pod.hostNetwork, true, 'host network')
    t.equal(pod.serviceAccountName, 'kmesh-ts')
    t.match(
      container.readinessProbe,
      { httpGet: { path: '/healthz/ready', port: 15200 } },
      'readiness on the admin path',
    )
    t.match(container.livenessProbe, { tcpSocket: { port: 15200 } }, 'liveness: the admin port answers')
    const env = new Map<string, { value?: string }>(container.env.map((e: { name: string }) => [e.name, e]))
    t.equal(env.get('KMESH_ADMIN_ADDRESS')?.value, '$(INSTANCE_IP):15200', 'admin on the pod IP, where kubelet probes')
    t.ok(
      [...env.keys()].indexOf('INSTANCE_IP') < [...env.keys()].indexOf('KMESH_ADMIN_ADDRESS'),
      '$(INSTANCE_IP) is defined before it is used',
    )
    t.same(
      [...env.keys()].filter((n) => !daemonEnvNames.has(n) && !METADATA_ENV.has(n)),
      [],
      "every variable is one of the daemon's flags (apps/kmesh-daemon/src/cli-flags.ts) or pod metadata",
    )
    const annotations = ds.spec.template.metadata.annotations ?? {}
    if (name === 'capabilities') {
      t.notOk(annotations['prometheus.io/scrape'], 'no scrape annotations when metrics.scrape is false')
      t.same(container.securityContext, {
        privileged: false,
        capabilities: {
          drop: ['ALL'],
          add: ['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_RESOURCE'],
        },
      })
      t.equal(container.image, 'localhost/kmesh-ts/kmesh-daemon:test')
      t.equal(env.get('NETWORK')?.value, 'net-east')
      t.equal(env.get('KMESH_MAP_SIZE')?.value, 'backend=200000', 'extraEnv appended')
      t.notOk(env.has('KMESH_CNI_BIN_DIR'), 'no CNI install')
      t.notOk(env.has('KMESH_KEEP_PINNED'))
      t.same(ds.spec.updateStrategy, { type: 'OnDelete' })
      t.equal(ds.spec.template.metadata.labels.team, 'mesh')
      t.equal(annotations['example.com/owner'], 'mesh')
    } else {
      t.same(
        [annotations['prometheus.io/scrape'], annotations['prometheus.io/port'], annotations['prometheus.io/path']],
        ['true', '15020', '/metrics'],
        'Prometheus scrape annotations on the metrics port',
      )
      t.same(container.securityContext, { privileged: true })
      t.equal(container.image, 'localhost/kmesh-ts/kmesh-daemon:0.1.0', "tag defaults to the chart's appVersion")
      t.equal(env.get('KMESH_KEEP_PINNED')?.value, 'true', 'rolling updates keep the pins for the next pod')
    }
    t.ok(container.resources.requests.cpu && container.resources.requests.memory, 'resource requests')
    const hostPaths = Object.fromEntries(
      pod.volumes
        .filter((v: { hostPath?: unknown }) => v.hostPath)
        .map((v: { name: string; hostPath: { path: string } }) => [v.name, v.hostPath.path]),
    )
    t.match(
      hostPaths,
      { bpffs: '/sys/fs/bpf', cgroup2: '/sys/fs/cgroup', 'host-proc': '/proc' },
      'bpffs, cgroup2, /proc',
    )
    if (name !== 'capabilities') t.match(hostPaths, { 'cni-bin': '/opt/cni/bin', 'cni-conf': '/etc/cni/net.d' })
    const projected = pod.volumes.find((v: { name: string }) => v.name === 'istio-token')
    t.match(projected.projected.sources[0].serviceAccountToken, { audience: 'istio-ca', path: 'istio-token' })
    t.equal(ipsec, env.has('KMESH_IPSEC_KEY_FILE'), 'the IPsec key file only with ipsec.enabled')
  })
}

t.test(
  'no field the Kubernetes API does not know (excess-property check against kubernetes-models types)',
  async (t) => {
    // The OpenAPI validators accept unknown fields (the schemas do not close objects), while the API server's strict
    // field validation refuses them; TypeScript's excess-property check on object literals, typed with
    // kubernetes-models' interfaces, finds a misspelt or misplaced field anywhere in an object.
    const dir = t.testdir({ 'package.json': '{ "type": "module" }' })
    const imports = new Map<string, string>()
    const lines: string[] = []
    let n = 0
    for (const values of Object.values(VALUE_SETS))
      for (const { object } of render.renderChart({ values }).documents) {
        imports.set(`I${object.kind}`, `kubernetes-models/${object.apiVersion}/${object.kind}`)
        lines.push(`export const o${n++}: I${object.kind} = ${JSON.stringify(object)}`)
      }
    imports.set('IServiceAccount', 'kubernetes-models/v1/ServiceAccount')
    lines.push(
      "export const typo: IServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'x', lables: {} } }",
    )
    const source = [...[...imports].map(([type, mod]) => `import type { ${type} } from '${mod}'`), ...lines].join('\n')
    writeFileSync(join(dir, 'objects.ts'), `${source}\n`)
    const compilerOptions = { strict: true, module: 'nodenext', moduleResolution: 'nodenext', noEmit: true, types: [] }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['objects.ts'] }))
    const tsc = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url))
    let output = ''
    try {
      execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err)
    }
    const errors = output.split('\n').filter((l) => l.includes('error TS'))
    t.equal(errors.length, 1, `${n} rendered objects have no unknown field: ${errors.join(' | ')}`)
    t.match(errors[0] ?? '', /'lables' does not exist in type 'IObjectMeta'/, 'and the check does find one')
  },
)

t.test('the validators refuse what the API server would', async (t) => {
  const { documents } = render.renderChart()
  const ds = structuredClone(documents.find((d) => d.object.kind === 'DaemonSet')?.object) as K8sObject
  ds.spec.template.spec.containers[0].ports[0].containerPort = 'admin-port'
  t.throws(() => modelOfSync(ds), /containerPort must be integer/)
  const role = structuredClone(documents.find((d) => d.object.kind === 'ClusterRole')?.object) as K8sObject
  delete role.rules[0].verbs
  t.throws(() => modelOfSync(role), /rules\/0 must have required property verbs/)
})

t.test('deploy/manifests is the chart rendered, byte for byte', async (t) => {
  t.equal(
    readFileSync(`${deploy}manifests/kmesh-ts.yaml`, 'utf8'),
    render.renderChart().manifest,
    'stale: node deploy/render.mjs --out deploy/manifests/kmesh-ts.yaml',
  )
  t.equal(
    readFileSync(`${deploy}manifests/kmesh-ts-ipsec.yaml`, 'utf8'),
    render.renderChart({ values: [IPSEC_VALUES] }).manifest,
    'stale: node deploy/render.mjs --values deploy/manifests/ipsec-values.yaml --out deploy/manifests/kmesh-ts-ipsec.yaml',
  )
  t.same(YAML.parse(readFileSync(`${deploy}manifests/ipsec-values.yaml`, 'utf8')), IPSEC_VALUES)
})

t.test('the CRD accepts the KmeshNodeInfo the daemon writes', async (t) => {
  const crd = render.renderChart().documents.find((d) => d.object.kind === 'CustomResourceDefinition')?.object
  const schema = crd?.spec.versions[0].schema.openAPIV3Schema
  // ajv is CommonJS: its default export is the class at run time, which its types do not say under NodeNext.
  type Validator = ((data: unknown) => boolean) & { errors?: unknown }
  const AjvClass = Ajv as unknown as new (options: object) => { compile(schema: object): Validator }
  const validate = new AjvClass({ strict: false }).compile(schema)
  const doc = nodeInfoDocument({
    name: 'node-a',
    spi: 1,
    addresses: ['192.168.0.1'],
    bootID: 'aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa',
    podCIDRs: ['10.244.1.0/24'],
  })
  t.ok(validate(doc), `valid: ${JSON.stringify(validate.errors)}`)
  t.notOk(validate({ ...doc, spec: { spi: 1 } }), 'a spec without addresses is refused')
})

t.test('values are checked against values.schema.json', async (t) => {
  t.throws(() => render.renderChart({ values: [{ admin: { port: 0 } }] }), /\/admin\/port must be >= 1/)
  t.throws(() => render.renderChart({ values: [{ imagee: {} }] }), /must NOT have additional properties: imagee/)
  t.throws(() => render.renderChart({ values: [{ log: { level: 'loud' } }] }), /\/log\/level must be equal to one of/)
  t.throws(
    () => render.renderChart({ values: [{ image: { repository: null } }] }),
    /must have required property 'repository'/,
  )
})

t.test('the renderer', async (t) => {
  const ctx = {
    Values: { a: { b: 'x y', n: 0, list: [1, 2], map: { k: 'v' } }, on: true, off: false, empty: '' },
    Release: { Name: 'r' },
    Chart: { AppVersion: '1.2.3' },
  }
  const r = (text: string) => render.renderTemplate(text, ctx, 'case.yaml')
  t.equal(r('name: {{ .Release.Name }}'), 'name: r')
  t.equal(r('v: {{ .Values.a.b | quote }}'), 'v: "x y"')
  t.equal(r('v: {{ .Values.a.n | quote }}'), 'v: "0"', 'numbers quote as text')
  t.equal(r('t: {{ .Values.empty | default .Chart.AppVersion }}'), 't: 1.2.3', 'default with a piped value')
  t.equal(r('t: {{ "lit" | default "d" }}'), 't: lit')
  t.equal(r('m:\n  {{- toYaml .Values.a.map | nindent 2 }}\n'), 'm:\n  k: v\n')
  t.equal(r('l:{{ toYaml .Values.a.list | indent 2 }}'), 'l:  - 1\n  - 2')
  t.equal(r('a\n{{- if .Values.on }}\nyes\n{{- else }}\nno\n{{- end }}\nb'), 'a\nyes\nb')
  t.equal(r('a\n{{- if .Values.off }}\nyes\n{{- else }}\nno\n{{- end }}\nb'), 'a\nno\nb')
  t.equal(
    r('{{ if .Values.a.n }}x{{ end }}{{ if .Values.a.list }}L{{ end }}{{ if .Values.nothing }}N{{ end }}'),
    'L',
    'Go truth',
  )
  t.equal(r('{{ if .Values.on }}{{ if .Values.off }}1{{ else }}2{{ end }}3{{ end }}4'), '234', 'nested if')
  t.equal(r('x {{- /* a comment */ -}} y'), 'xy', 'comments and trimming both sides')
  t.throws(() => r('line\n{{ range .Values.a.list }}{{ end }}'), /case\.yaml:2: "range" is not supported/)
  t.throws(() => r('{{ .Values.missing }}'), /case\.yaml:1: "\.Values\.missing" has no value/)
  t.throws(() => r('{{ .Values.a.map }}'), /is a map or list: use toYaml/)
  t.throws(() => r('{{ if .Values.on }}'), /"if" without "end"/)
  t.throws(() => r('{{ upper .Values.a.b }}'), /case\.yaml:1: "upper" is not a function/)
  t.same(
    render.mergeValues({ a: { b: 1, c: 2 }, l: [1, 2], k: 1 }, { a: { c: 3 }, l: [3], k: null }),
    { a: { b: 1, c: 3 }, l: [3] },
    "helm's merge: maps merge, lists replace, null deletes",
  )
})
