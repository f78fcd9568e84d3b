// MiniHDFS runs a real HDFS (one NameNode, one DataNode) on loopback for
// Mysos' tests: Hadoop's own MiniDFSCluster. Arguments: the base directory,
// the NameNode's RPC port, and a file to write "host:port" into once the
// cluster is up. It runs until killed; the shutdown hook stops the cluster.
// The directory /full has a 1 MiB space quota: writing there is what a
// full HDFS answers (a quota or a full disk fail a write the same way).
import java.nio.file.Files;
import java.nio.file.Paths;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.HdfsConstants;

public class MiniHDFS {
  public static void main(String[] args) throws Exception {
    Configuration conf = new HdfsConfiguration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, args[0]);
    // Every listener on loopback, on a port the kernel picks.
    for (String key : new String[] {
        "dfs.datanode.address", "dfs.datanode.http.address", "dfs.datanode.ipc.address",
        "dfs.namenode.http-address"}) {
      conf.set(key, "127.0.0.1:0");
    }
    conf.setBoolean("dfs.permissions.enabled", false);
    MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
        .nameNodePort(Integer.parseInt(args[1])).numDataNodes(1).build();
    cluster.waitActive();
    DistributedFileSystem fs = cluster.getFileSystem();
    fs.mkdirs(new Path("/full"));
    fs.setQuota(new Path("/full"), HdfsConstants.QUOTA_DONT_SET, 1024 * 1024);
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::shutdown));
    Files.writeString(Paths.get(args[2] + ".tmp"), "127.0.0.1:" + cluster.getNameNodePort() + "\n");
    Files.move(Paths.get(args[2] + ".tmp"), Paths.get(args[2]));
    Thread.currentThread().join();
  }
}
